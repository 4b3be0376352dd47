/**
 * Who may read a file that holds a secret (a token, a private key). Never others. The group only
 * when root owns the file and grants the group nothing but read: PostgreSQL's rule for its key,
 * and exactly what kubelet makes of a Secret volume under a pod's fsGroup (root:fsGroup 0440), so
 * sluice can run as a non-root user on Kubernetes with its keys mounted from Secrets.
 */

/** Why `st` is too open for a secret, or null when it is fine. `what` names the file in the message. */
export function secretFileModeProblem(st: { mode: number; uid: number }, what: string): string | null {
  const mode = st.mode & 0o777;
  const group = mode & 0o070;
  if ((mode & 0o007) === 0 && (group === 0 || (st.uid === 0 && group === 0o040))) return null;
  const octal = mode.toString(8).padStart(3, "0");
  return `${what} is readable by group or others (mode ${octal}); chmod 600 it (a file root owns may be 640: read by its group only)`;
}
