#!/bin/bash
# state rebuild against damaged out folders (needs /tmp/p23/chain from chain_build.sh, keys2 from
# `auditor keygen --out /tmp/p23/keys2`). Each case prints the command's last line.
cd /tmp/p23; P=/work/p19/probe23/.venv/bin/auditor; K=keys/auditor-signing-key.pub.pem
t() { rm -rf rb rb.db .rb.db*; cp -a chain/archive rb; eval "$1"
      $P state rebuild --out rb --state rb.db --pubkey ${2:-$K} 2>&1 | tail -1 | cut -c1-200
      echo "   left: $(ls -a | grep 'rb\.db' | tr '\n' ' ')"; }
echo "-- missing middle bag";  t 'rm -rf rb/run-000002-*'
echo "-- missing newest bag (accepted: a truncated chain is not detectable)"; t 'rm -rf rb/run-000004-*'
echo "-- other key";           t ':' keys2/auditor-signing-key.pub.pem
echo "-- replayed bag";        t 'cp -a rb/run-000003-* rb/run-000005-2026110112-2026110118'
echo "-- empty run-like folder (was: [Errno 2] + .rb.db.rebuilding left)"; t 'mkdir rb/run-000009-junk'
echo "-- renamed bag (was: skipped, state short of run 2)"; t 'mv rb/run-000002-* rb/evidence-run-2'
echo "-- kill -9 once .rb.db.rebuilding exists"
rm -f rb.db .rb.db*; ( $P state rebuild --out rb --state rb.db --pubkey $K & p=$!
  while [ ! -e .rb.db.rebuilding ]; do sleep 0.02; done; kill -9 $p ); sleep 0.3
echo "   left: $(ls -a | grep 'rb\.db' | tr '\n' ' ') (removed by the next rebuild)"
