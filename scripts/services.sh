#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432, database "test") and RabbitMQ (127.0.0.1:5672) are up,
# installing them from Debian's packages when they are missing. Used by scripts/test.sh and CI.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 90); do port_open "$1" && return 0; sleep 1; done
  echo "services.sh: nothing listens on 127.0.0.1:$1 after 90 s" >&2; return 1
}
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# PostgreSQL
if ! port_open 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "services.sh: installing PostgreSQL from Debian's packages"
    apt_install postgresql
    conf=$(ls -d /etc/postgresql/*/main | head -1)
    # Tests connect as postgres over TCP without a password, as on the project's machines.
    as_root sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$conf/pg_hba.conf"
    as_root sed -i -E 's/^(local\s+all\s+postgres\s+)\S+/\1trust/' "$conf/pg_hba.conf"
  fi
  version=$(ls /etc/postgresql | head -1)
  # The package may have started the cluster already: reload so the trust lines take effect.
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start \
    || as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
  wait_port 5432
fi
if ! psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='test'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -c "create database test" >/dev/null
fi

# RabbitMQ
if ! port_open 5672; then
  if ! command -v rabbitmq-server >/dev/null 2>&1 && [ ! -x /usr/sbin/rabbitmq-server ]; then
    echo "services.sh: installing RabbitMQ from Debian's packages"
    apt_install rabbitmq-server
  fi
  as_root rabbitmq-server -detached || true
  wait_port 5672
  as_root rabbitmqctl await_startup >/dev/null 2>&1 || true
fi
echo "services.sh: PostgreSQL and RabbitMQ are up"
