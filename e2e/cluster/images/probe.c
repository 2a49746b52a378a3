/* sluice-probe: what a hostile agent does inside its container, as one static binary for the
 * e2e/cluster agent image. Every command prints one line `PROBE <what> <result>` (parsed by the
 * tests) and exits 0 when the attempt succeeded, 1 when it was refused, 2 on bad usage.
 *
 *   sluice-probe id                         uid/gid/effective capabilities of this process
 *   sluice-probe http IP PORT PATH          plain HTTP/1.1 GET to IP:PORT (what the pod's rules do with it
 *                                           is the point): prints the status line and an X-Sluice-* header
 *   sluice-probe setuid UID IP PORT PATH    setuid(UID) first (as a root agent would to look like the
 *                                           sidecar), then the same GET whatever setuid answered
 *   sluice-probe raw                        socket(AF_INET, SOCK_RAW) and socket(AF_PACKET, SOCK_RAW)
 *   sluice-probe wait-ready PORT            first GET /readyz on 127.0.0.1:PORT (no retry): the sidecar's answer
 *   sluice-probe now                        wall clock in ms (the agent's own start time)
 *
 * It never retries: a test wants the first answer the kernel and the pod's rules give. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int http_get(const char *what, const char *ip, int port, const char *path) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) { printf("PROBE %s socket-failed errno=\"%s\"\n", what, strerror(errno)); return 1; }
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) { printf("PROBE %s bad-address\n", what); return 2; }
  struct timeval tv = {5, 0};
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(s, (struct sockaddr *)&a, sizeof a)) {
    printf("PROBE %s connect-failed errno=\"%s\" uid=%d\n", what, strerror(errno), (int)getuid());
    return 1;
  }
  char req[512];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: sluice-probe\r\nConnection: close\r\n\r\n", path, ip, port);
  if (write(s, req, n) != n) { printf("PROBE %s write-failed errno=\"%s\"\n", what, strerror(errno)); close(s); return 1; }
  char buf[8192];
  size_t got = 0;
  for (;;) {
    ssize_t r = read(s, buf + got, sizeof buf - 1 - got);
    if (r <= 0) break;
    got += (size_t)r;
    if (got >= sizeof buf - 1) break;
  }
  close(s);
  buf[got] = 0;
  if (got == 0) { printf("PROBE %s no-response uid=%d\n", what, (int)getuid()); return 1; }
  char *eol = strstr(buf, "\r\n");
  char status[200] = "";
  if (eol) { size_t l = (size_t)(eol - buf) < sizeof status - 1 ? (size_t)(eol - buf) : sizeof status - 1; memcpy(status, buf, l); status[l] = 0; }
  /* which component answered: a header the sidecar sets, or the body's first line from the test server */
  char marker[200] = "-";
  for (char *p = buf; p && *p; ) {
    char *next = strstr(p, "\r\n");
    if (next == p) { /* end of headers: the body follows */
      char *body = p + 2; size_t l = strcspn(body, "\r\n"); if (l > sizeof marker - 1) l = sizeof marker - 1;
      if (marker[0] == '-' && l) { memcpy(marker, body, l); marker[l] = 0; }
      break;
    }
    if (!strncasecmp(p, "x-sluice", 8) && marker[0] == '-') {
      size_t l = next ? (size_t)(next - p) : strlen(p); if (l > sizeof marker - 1) l = sizeof marker - 1;
      memcpy(marker, p, l); marker[l] = 0;
    }
    p = next ? next + 2 : NULL;
  }
  for (char *c = marker; *c; c++) if (*c == ' ') *c = '_';
  printf("PROBE %s response uid=%d status=\"%s\" marker=%s\n", what, (int)getuid(), status, marker);
  return 0;
}

static int raw_sockets(void) {
  int ok = 0;
  int s = socket(AF_INET, SOCK_RAW, IPPROTO_TCP);
  if (s >= 0) { printf("PROBE raw inet-raw=opened\n"); ok = 1; close(s); } else printf("PROBE raw inet-raw=refused errno=\"%s\"\n", strerror(errno));
  s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
  if (s >= 0) { printf("PROBE raw packet=opened\n"); ok = 1; close(s); } else printf("PROBE raw packet=refused errno=\"%s\"\n", strerror(errno));
  return ok ? 0 : 1;
}

static int id(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256], capeff[64] = "?", capbnd[64] = "?";
  while (f && fgets(line, sizeof line, f)) {
    if (!strncmp(line, "CapEff:", 7)) sscanf(line + 7, "%63s", capeff);
    if (!strncmp(line, "CapBnd:", 7)) sscanf(line + 7, "%63s", capbnd);
  }
  if (f) fclose(f);
  printf("PROBE id uid=%d gid=%d euid=%d capeff=%s capbnd=%s\n", (int)getuid(), (int)getgid(), (int)geteuid(), capeff, capbnd);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 2 && !strcmp(argv[1], "id")) return id();
  if (argc == 2 && !strcmp(argv[1], "raw")) return raw_sockets();
  if (argc == 2 && !strcmp(argv[1], "now")) {
    struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts);
    printf("PROBE now ms=%lld\n", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000); return 0;
  }
  if (argc == 3 && !strcmp(argv[1], "wait-ready")) return http_get("readyz", "127.0.0.1", atoi(argv[2]), "/readyz");
  if (argc == 5 && !strcmp(argv[1], "http")) return http_get("http", argv[2], atoi(argv[3]), argv[4]);
  if (argc == 6 && !strcmp(argv[1], "setuid")) {
    int uid = atoi(argv[2]);
    if (setuid((uid_t)uid) == 0) printf("PROBE setuid %d=ok\n", uid);
    else printf("PROBE setuid %d=refused errno=\"%s\"\n", uid, strerror(errno));
    return http_get("setuid-http", argv[3], atoi(argv[4]), argv[5]);
  }
  fprintf(stderr, "usage: sluice-probe id | raw | now | wait-ready PORT | http IP PORT PATH | setuid UID IP PORT PATH\n");
  return 2;
}
