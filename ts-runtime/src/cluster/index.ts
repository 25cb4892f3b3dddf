export { createLocalCluster } from './local';
export { reapStaleJobs } from './reap';
export { OVERLAY_SUBNET, JOBS_ROOT } from './layout';
export type { Cluster, ClusterRequest, ContainerHandle, HostHandle, LauncherHandle, ProgressReporter } from './types';
