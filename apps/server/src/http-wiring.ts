/**
 * What the server needs only when it serves HTTP(S), imported on demand by `startServer`: @proj/http with
 * ws, the admin API and the Studio's routes add 4–5 MB to the RSS of a server that never uses them.
 */
export { createHttpHandler } from '@proj/http'
export { ADMIN_PREFIX, adminApi } from './admin-api.js'
export { healthRoute, refuseReservedPaths } from './server-routes.js'
export { findStudioAssets, rootRedirect, STUDIO_PREFIX, studioRoute } from './studio-assets.js'
