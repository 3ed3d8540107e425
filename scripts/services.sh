#!/usr/bin/env bash
# Makes sure the local services the tests use answer, starting any that does not.
# PostgreSQL (5432), MariaDB (3306), RabbitMQ (5672). Idempotent.
set -euo pipefail

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local name=$1 port=$2 i
  for i in $(seq 1 120); do
    answers "$port" && return 0
    sleep 1
  done
  echo "services: $name did not come up on port $port" >&2
  return 1
}

ensure() {
  local name=$1 port=$2; shift 2
  if answers "$port"; then return 0; fi
  echo "services: starting $name"
  "$@" || true
  wait_for "$name" "$port"
}

ensure postgresql 5432 bash -c 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'
ensure mariadb 3306 start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
ensure rabbitmq 5672 rabbitmq-server -detached

# RabbitMQ accepts TCP before it serves AMQP: wait until it answers as a broker.
if command -v rabbitmq-diagnostics >/dev/null 2>&1; then
  for i in $(seq 1 60); do
    rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1 && break
    sleep 1
  done
fi

# AMQP 1.0 (the MQ capture point's second transport) is a plugin in RabbitMQ 3.x; RabbitMQ 4
# speaks it without one. Idempotent; the plugin listens on the same port as AMQP 0-9-1.
if command -v rabbitmq-plugins >/dev/null 2>&1; then
  rabbitmq-plugins list -q -e 2>/dev/null | grep -q rabbitmq_amqp1_0 ||
    rabbitmq-plugins enable rabbitmq_amqp1_0 >/dev/null 2>&1 ||
    echo "services: rabbitmq_amqp1_0 could not be enabled (RabbitMQ 4 needs no plugin)" >&2
fi
