// @timeslide/dashboard: a read-only live page of campaigns, inference servers
// and workers (`timeslide dashboard`).
export { startDashboard, DashboardSettings, DEFAULT_HOST, DEFAULT_PORT, DEFAULT_REFRESH_MS, type DashboardOptions, type RunningDashboard } from "./server.js";
export { SnapshotCollector, type Snapshot, type CampaignView, type ServerView, type ModelView, type WorkerView, type FailureRow, type CandidateRow, type ReportView } from "./snapshot.js";
