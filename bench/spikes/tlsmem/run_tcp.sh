#!/bin/sh
# usage: run_tcp.sh <server flags> -- <client flags>
cd "$(dirname "$0")"
SF="$1"; CF="$2"
rm -f srv.out srv.err
taskset -c 0 ./spike -n 2000 $SF tcpserver >srv.out 2>srv.err &
SPID=$!
while [ ! -s srv.out ]; do sleep 0.1; done
ADDR=$(head -1 srv.out)
taskset -c 1 ./spike -n 2000 $CF tcpclient $ADDR 2>cli.err &
CPID=$!
wait $SPID
kill $CPID
cat srv.err; cat cli.err
