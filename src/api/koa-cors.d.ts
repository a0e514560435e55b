// @koa/cors ships no types and @types/koa__cors is not installed; the part of its options this app uses.
declare module '@koa/cors' {
  import type { Context, Middleware } from 'koa';
  interface CorsOptions {
    origin?: string | ((ctx: Context) => string | false | Promise<string | false>);
    allowMethods?: string | string[];
    allowHeaders?: string | string[];
    exposeHeaders?: string | string[];
    maxAge?: number | string;
    credentials?: boolean;
    keepHeadersOnError?: boolean;
  }
  export default function cors(options?: CorsOptions): Middleware;
}
