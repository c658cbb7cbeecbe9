/** Lua scripts are bundled as text (esbuild `--loader:.lua=text`; the vitest config does the same). */
declare module '*.lua' {
  const source: string;
  export default source;
}
