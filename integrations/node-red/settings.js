// Node-RED settings for running tracepay's flow on one machine.
// Loopback only; port, user directory and the bridge address come from the environment:
//   TRACEPAY_NODERED_PORT (default 1880), TRACEPAY_NODERED_DIR (default ./nodered-data),
//   TRACEPAY_BRIDGE_URL (read by the flow; default http://127.0.0.1:8300).
// Example:
//   TRACEPAY_BRIDGE_URL=http://127.0.0.1:8300 node-red --settings integrations/node-red/settings.js
//   curl -X POST -H 'Node-RED-Deployment-Type: full' -H 'Content-Type: application/json' \
//        --data @integrations/node-red/flow.json http://127.0.0.1:1880/admin/flows
const path = require("path");

module.exports = {
    uiHost: "127.0.0.1",
    uiPort: parseInt(process.env.TRACEPAY_NODERED_PORT || "1880", 10),
    userDir: process.env.TRACEPAY_NODERED_DIR || path.join(process.cwd(), "nodered-data"),
    flowFile: "flows.json",
    credentialSecret: false,
    httpAdminRoot: "/admin",
    httpNodeRoot: "/",
    // The admin API is open because it listens on loopback only; set adminAuth before
    // exposing it anywhere else.
    diagnostics: { enabled: false },
    telemetry: { enabled: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    editorTheme: { tours: false, projects: { enabled: false } },
    logging: { console: { level: "warn", metrics: false, audit: false } },
    functionExternalModules: false,
};
