#!/usr/bin/env bash
# prolog.sh - Slurm Prolog (slurm.conf: Prolog=/opt/kiln/slurm/prolog.sh): a quick kiln check before each
# job on each of its nodes. A FAIL drains the node with kiln's reason ("kiln: CODE COMPONENT"), so no
# further job lands there. The prolog still exits 0 unless KILN_PROLOG_REFUSE=1: a failed prolog makes
# Slurm requeue the job but also drain the node with its own reason "Prolog error", which kiln then
# may not resume (it resumes only its own drains). Cost: docs/SLURM.md.
kiln=${KILN:-/opt/kiln/bin/kiln}
"$kiln" slurm healthcheck --timeout "${KILN_PROLOG_TIMEOUT:-20}" >> "${KILN_PROLOG_LOG:-/var/log/kiln-prolog.log}" 2>&1
rc=$?
# Exit 1 is a FAIL (drained); 3 is Slurm not answering, 2 a bad setup: neither is the node's fault.
[[ $rc -eq 1 && ${KILN_PROLOG_REFUSE:-0} == 1 ]] && exit 1
exit 0
