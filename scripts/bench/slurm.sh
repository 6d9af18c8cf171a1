# slurm.sh - kiln slurm healthcheck's wall, sourced by scripts/bench.sh (uses its row function and
# runs): the whole HealthCheckProgram call on this node (no GPU), the check and the scontrol query of
# the node's state, <= 2 s. With a loopback Slurm up (SLURM_CONF set, scripts/slurm/local-cluster.sh)
# the real scontrol; else a stand-in that answers "idle", so the number is kiln's own cost plus one
# process start.
tmp=$(mktemp -d)
hc_args=(build/bin/kiln slurm healthcheck)
if [[ -n "${SLURM_CONF:-}" ]] && command -v scontrol >/dev/null && scontrol -o show node node1 >/dev/null 2>&1; then
  hc_args+=(--node node1); hc_peer="target (real scontrol, loopback Slurm)"
else
  printf '#!/bin/sh\necho "NodeName=bench Arch=x86_64 State=IDLE ThreadsPerCore=1"\n' > "$tmp/scontrol"
  chmod +x "$tmp/scontrol"
  export KILN_SCONTROL="$tmp/scontrol"
  hc_args+=(--node bench); hc_peer="target (stand-in scontrol)"
fi
t_hc=$(hyperfine -N -w 2 -r "$runs" --export-csv "$tmp/hc.csv" "${hc_args[*]}" >/dev/null 2>&1 && awk -F, 'NR==2 {printf "%.4f", $2}' "$tmp/hc.csv")
row slurm_healthcheck_wall "$t_hc" 2.0 "$hc_peer" s 0
rm -rf "$tmp"; unset KILN_SCONTROL
