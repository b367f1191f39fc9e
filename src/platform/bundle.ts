// Where sqz's own assets are, from the module that needs them. In the source tree they are
// files beside the TypeScript; in the browser bundle (scripts/build_web.ts writes dist/) they
// sit beside dist/sqz.js, and esbuild defines __SQZ_BUNDLE__ = true. `typeof` of an undeclared
// name is "undefined", so the source tree needs no definition.
declare const __SQZ_BUNDLE__: boolean | undefined;

/** True inside dist/sqz.js. */
export const BUNDLED: boolean = typeof __SQZ_BUNDLE__ !== "undefined" && __SQZ_BUNDLE__ === true;
