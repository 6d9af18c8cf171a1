#!/usr/bin/env bash
# epilog.sh - Slurm Epilog (slurm.conf: Epilog=/opt/kiln/slurm/epilog.sh): a quick kiln check after each
# job on each of its nodes, so a job that broke a GPU (Xid, ECC, a GPU off the bus) drains the node
# before the next job lands on it. Always exits 0: the finished job's state is not changed. Cost: docs/SLURM.md.
kiln=${KILN:-/opt/kiln/bin/kiln}
"$kiln" slurm healthcheck --timeout "${KILN_EPILOG_TIMEOUT:-20}" >> "${KILN_EPILOG_LOG:-/var/log/kiln-epilog.log}" 2>&1
exit 0
