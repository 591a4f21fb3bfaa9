/** The folder with the Studio's built files (`index.html`, `assets/`), which @proj/server serves at /studio/. */
export declare const studioAssets: string
