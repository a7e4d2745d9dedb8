/**
 * The part of JupyterLab's `TranslationBundle` the frontend uses: pure modules
 * take one of these, so they stay free of JupyterLab imports (and testable).
 */
export interface ITrans {
  /** Translate `msgid`, replacing `%1`, `%2`… with `args`. */
  __(msgid: string, ...args: any[]): string;
  /** Translate a message with a plural form chosen by `n`. */
  _n(msgid: string, msgidPlural: string, n: number, ...args: any[]): string;
}

/**
 * The translation domain of the extension.
 */
export const TRANSLATION_DOMAIN = 'jupyter_canvas';

function substitute(msgid: string, args: any[]): string {
  return msgid.replace(/%(\d+)/g, (match, index: string) => {
    const value = args[Number(index) - 1];
    return value === undefined ? match : `${value}`;
  });
}

/**
 * English, without a translator.
 */
export const english: ITrans = {
  __: (msgid, ...args) => substitute(msgid, args),
  _n: (msgid, msgidPlural, n, ...args) =>
    substitute(n === 1 ? msgid : msgidPlural, args)
};
