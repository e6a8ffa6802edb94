/**
 * cluster/admin: the node's admin operations (one table, AdminService) and
 * their two front doors, HTTP (`/admin/<op>`) and NATS (`<prefix>.admin.<op>`,
 * `<prefix>.admin.node.<id>.<op>`). The inspector CLI (cluster/inspector)
 * is their client.
 */
export * from './admin-ops.ts';
export * from './admin-http.ts';
export * from './admin-nats.ts';
export * from './costs.ts';
