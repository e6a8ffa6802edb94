/** `parsers` and `serializers` every PGlite database of Chorus is created with (see pglite-options.mjs). */
export declare const PGLITE_TYPE_OPTIONS: {
  readonly parsers: Readonly<Record<number, (text: string) => unknown>>;
  readonly serializers: Readonly<Record<number, (value: unknown) => string>>;
};
