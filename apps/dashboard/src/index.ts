// @timeslide/dashboard: a read-only live page of campaigns, inference servers
// and workers (`timeslide dashboard`).
export { DEFAULT_HOST, DEFAULT_PORT, DEFAULT_REFRESH_MS } from "./defaults.js";
export { startDashboard, DashboardSettings, type DashboardOptions, type RunningDashboard } from "./server.js";
export { SnapshotCollector, type Snapshot, type CampaignView, type ServerView, type ModelView, type WorkerView, type FailureRow, type CandidateRow, type ReportView } from "./snapshot.js";
