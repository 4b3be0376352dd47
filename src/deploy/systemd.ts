/**
 * The systemd unit for sluice (`sluice install systemd`): a dedicated, dynamic user; state in
 * /var/lib/sluice (StateDirectory, SLUICE_HOME); the filesystem read-only but for it; no
 * capabilities at all for sluice itself; Restart=on-failure; started only once /healthz answers
 * (ExecStartPost=sluice health --wait). With host mode, the nftables table is installed before
 * sluice starts by a command that runs with full privileges ("+", the only step that needs
 * CAP_NET_ADMIN), so the service itself never holds it; it is not removed when sluice stops
 * (a restart or a crash must not free the agent). Pure.
 */
export interface SystemdUnitOptions {
  /** Absolute path of the sluice binary. */
  readonly binary: string;
  /** Absolute path of the config file. */
  readonly config: string;
  /** Host mode for this user (sluice nft apply --host --uid USER), or none. */
  readonly hostModeUser?: string;
  /** Seconds ExecStartPost waits for /healthz. */
  readonly readyTimeoutS?: number;
}

const SAFE_PATH = /^\/[A-Za-z0-9._/-]+$/;
const SAFE_USER = /^[a-z_][a-z0-9_-]{0,31}$/;

export function renderSystemdUnit(o: SystemdUnitOptions): string {
  for (const [what, p] of [["binary", o.binary], ["config", o.config]] as const) {
    if (!SAFE_PATH.test(p)) throw new Error(`the ${what} path must be absolute and plain (letters, digits, . _ - /): ${JSON.stringify(p)}`);
  }
  if (o.hostModeUser !== undefined && (!SAFE_USER.test(o.hostModeUser) || o.hostModeUser === "root")) throw new Error(`not a user name for host mode: ${JSON.stringify(o.hostModeUser)}`);
  const wait = o.readyTimeoutS ?? 30;
  const hostMode = o.hostModeUser === undefined ? [] : [
    "# Host mode: the agent user's traffic through sluice. The only privileged step (\"+\": run",
    "# without the sandbox below, with CAP_NET_ADMIN); the service itself holds no capability.",
    "# The table stays when sluice stops or crashes (fail closed: the agent's traffic then meets",
    "# no listener); `sluice nft remove` takes it out, by hand.",
    `ExecStartPre=+${o.binary} nft apply --host --uid ${o.hostModeUser} --config ${o.config}`,
  ];
  return [
    "[Unit]",
    "Description=sluice, the egress firewall AI agents run behind",
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    "Type=exec",
    "DynamicUser=yes",
    "User=sluice",
    "StateDirectory=sluice",
    "StateDirectoryMode=0700",
    "ConfigurationDirectory=sluice",
    "Environment=SLUICE_HOME=%S/sluice",
    `ExecStart=${o.binary} run --config ${o.config} --log-format json`,
    // Started means serving: /healthz answers 200 (and 503 while the audit log cannot be written).
    `ExecStartPost=${o.binary} health --config ${o.config} --wait ${wait}`,
    ...hostMode,
    "ExecReload=/bin/kill -HUP $MAINPID",
    "Restart=on-failure",
    "RestartSec=2",
    `TimeoutStartSec=${wait + 15}`,
    "# Sandbox: sluice needs its state directory, the network, and nothing else.",
    "NoNewPrivileges=yes",
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "SystemCallArchitectures=native",
    "# No MemoryDenyWriteExecute: the JavaScript JIT writes code it runs.",
    "UMask=0077",
    "LimitNOFILE=65536",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}
