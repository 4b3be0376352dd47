/**
 * Who may read a file that holds a secret (a token, a private key). Never others. Its group only
 * when root owns the file, grants the group nothing but read, and the group is one of sluice's
 * own while sluice does not run as root: PostgreSQL's rule for its key, and exactly what kubelet
 * makes of a Secret volume under a pod's fsGroup (root:fsGroup 0440), so sluice can run as a
 * non-root user on Kubernetes with its keys mounted from Secrets. A root sluice has no need of
 * it, and a group it is not in (root:users 0640) is other people.
 */

/** The identity a secret file is read as: the effective uid and every group id of the process. */
export interface Reader {
  readonly uid: number;
  readonly gids: readonly number[];
}

/** This process's identity (no ids where the platform has none: then only 0600 files pass). */
export function currentReader(): Reader {
  const uid = process.geteuid?.() ?? 0;
  const gids = [...new Set([process.getegid?.() ?? -1, ...(process.getgroups?.() ?? [])])];
  return { uid, gids };
}

/** Why `st` is too open for a secret read by `reader`, or null when it is fine. `what` names the file in the message. */
export function secretFileModeProblem(st: { mode: number; uid: number; gid: number }, what: string, reader: Reader = currentReader()): string | null {
  const mode = st.mode & 0o777;
  const group = mode & 0o070;
  const groupReadAllowed = st.uid === 0 && group === 0o040 && reader.uid !== 0 && reader.gids.includes(st.gid);
  if ((mode & 0o007) === 0 && (group === 0 || groupReadAllowed)) return null;
  const octal = mode.toString(8).padStart(3, "0");
  return `${what} is readable by group or others (mode ${octal}); chmod 600 it (a file root owns may be 640 when its group is sluice's own and sluice does not run as root)`;
}
