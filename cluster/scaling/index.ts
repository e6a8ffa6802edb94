export * from './scale-policy.ts';
export * from './forecast.ts';
export * from './scaler.ts';
export * from './backtest.ts';
export * from './scale-advisor.ts';
