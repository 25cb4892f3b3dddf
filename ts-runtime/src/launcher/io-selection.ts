/**
 * MPI-IO settings for jobs whose ranks sit in several containers and hosts (issue 9, docs/suites.md).
 *
 * ompio chooses a shared-file-pointer component (sharedfp) per file. Measured here on 2 hosts x 2
 * containers with the scratch volume (ffcheck_mpiio's shared_pointer subtest, Open MPI 4.1.4):
 * - `sm` keeps the pointer in a memory-mapped file of the node's session directory; it needs every rank on
 *   one node, and to Open MPI every container is a node of its own: forced, MPI_File_write_shared fails
 *   (MPI_ERR_OTHER);
 * - `individual` writes per-rank data files merged at close: no shared pointer to read back
 *   (get_position_shared fails, the file is empty until close);
 * - `lockedfile` keeps the pointer in a file next to the data file under fcntl locks: works, wherever the
 *   file system's locks span the ranks (the scratch tmpfs here; on a real cluster a shared file system
 *   with POSIX locks, e.g. NFS with lockd, Lustre mounted with flock).
 * lockedfile is what ompio picks anyway when the ranks span nodes; naming it keeps the choice the same for
 * a job that puts all ranks in one container (where sm would be eligible).
 * ROMIO (`--mca io romio321`) keeps its shared pointer in a hidden file under fcntl locks and needs no
 * setting.
 */
export const IO_MCA_SETTINGS: ReadonlyArray<readonly [name: string, value: string]> = [['sharedfp', 'lockedfile']];
