// The Debian package of each tool the workloads run (installed on demand), in a module of its own
// so that the layers' helpers and the workloads can both import it.
/** Debian package of each tool the workloads run (installed on demand). */
export const PACKAGE_OF: Record<string, string> = {
  sysbench: 'sysbench',
  fio: 'fio',
  iperf3: 'iperf3',
  'redis-server': 'redis-server',
  'redis-benchmark': 'redis-tools',
  mariadbd: 'mariadb-server',
  'mariadb-install-db': 'mariadb-server',
  sockperf: 'sockperf',
};
