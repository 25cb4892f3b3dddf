/* The node side of a freeflow job on an existing Slurm: the table from ffrun, the site's agents file, the
 * job directory's removal and the agent's control socket (node_job.h). */
#define _GNU_SOURCE
#include "node_job.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_AGENTS_FILE             (1024 * 1024)
#define MAX_TREE_DEPTH              8
#define AGENT_REPLY_TIMEOUT_SECONDS 5

static int fail(char *why, size_t why_size, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(why, why_size, format, args);
    va_end(args);
    return -1;
}

int node_job_valid_name(const char *text, size_t length)
{
    if (length == 0 || length > NODE_JOB_MAX_NAME) return 0;
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char) text[i];
        if (!(isalnum(c) || c == '.' || c == '_' || c == '-')) return 0;
    }
    return text[0] != '.';
}

/* Whole decimal number in [0, max] of `length` characters. */
static long number_of(const char *text, size_t length, long max)
{
    if (length == 0 || length > 9) return -1;
    long value = 0;
    for (size_t i = 0; i < length; i++) {
        if (!isdigit((unsigned char) text[i])) return -1;
        value = value * 10 + (text[i] - '0');
    }
    return value <= max ? value : -1;
}

struct cursor {
    const char *at;
    const char *end;
    int line;
};

/* The next ','-separated line, and its fields split on single spaces (at most `max_fields`). */
static int next_line(struct cursor *c, const char *fields[], size_t lengths[], int max_fields)
{
    if (c->at >= c->end) return -1;
    const char *stop = memchr(c->at, ',', (size_t) (c->end - c->at));
    if (stop == NULL) stop = c->end;
    c->line++;
    int count = 0;
    const char *field = c->at;
    for (const char *p = c->at;; p++) {
        if (p == stop || *p == ' ') {
            if (count == max_fields) return -1;
            fields[count] = field;
            lengths[count] = (size_t) (p - field);
            count++;
            if (p == stop) break;
            field = p + 1;
        }
    }
    c->at = stop == c->end ? stop : stop + 1;
    return count;
}

static int is_word(const char *field, size_t length, const char *word)
{
    return length == strlen(word) && memcmp(field, word, length) == 0;
}

int node_job_parse_table(const char *encoded, const char *job, struct node_job_table *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof *out);
    size_t size = strlen(encoded);
    if (size == 0 || size > NODE_JOB_MAX_TABLE)
        return fail(why, why_size, "the path table is empty or larger than %d bytes", NODE_JOB_MAX_TABLE);
    for (size_t i = 0; i < size; i++)
        if ((unsigned char) encoded[i] < 0x20 || encoded[i] == 0x7f)
            return fail(why, why_size, "the path table holds a control character");
    /* an empty line (",,", or one at the end) has no place in a table */
    if (encoded[size - 1] == ',' || strstr(encoded, ",,") != NULL)
        return fail(why, why_size, "the path table has an empty line: expected `end` last");
    struct cursor c = {encoded, encoded + size, 0};
    const char *f[5];
    size_t n[5];
    int version;
#define EXPECT(cond, ...)                                                                                              \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            char detail[160];                                                                                          \
            snprintf(detail, sizeof detail, __VA_ARGS__); /* before the free: it may name a host */                    \
            node_job_free_table(out);                                                                                  \
            return fail(why, why_size, "path table line %d: %s", c.line, detail);                                      \
        }                                                                                                              \
    } while (0)
    EXPECT(next_line(&c, f, n, 5) == 2 && is_word(f[0], n[0], "freeflow-path-table") &&
               ((version = (int) number_of(f[1], n[1], 2)) == 1 || version == 2),
           "expected `freeflow-path-table 1|2`");
    EXPECT(next_line(&c, f, n, 5) == 2 && is_word(f[0], n[0], "job") && is_word(f[1], n[1], job),
           "expected `job %s` (the --freeflow job)", job);
    EXPECT(next_line(&c, f, n, 5) == 2 && is_word(f[0], n[0], "key") && n[1] == 32, "expected `key <32 hex digits>`");
    for (size_t i = 0; i < 32; i++)
        EXPECT(isxdigit((unsigned char) f[1][i]) && !isupper((unsigned char) f[1][i]), "bad key");
    memcpy(out->key, f[1], 32);
    strcpy(out->job, job);
    long hosts;
    EXPECT(next_line(&c, f, n, 5) == 2 && is_word(f[0], n[0], "hosts") &&
               (hosts = number_of(f[1], n[1], NODE_JOB_MAX_HOSTS)) > 0,
           "expected `hosts <1-%d>`", NODE_JOB_MAX_HOSTS);
    out->host_count = (int) hosts;
    out->host_names = calloc((size_t) hosts, sizeof *out->host_names);
    EXPECT(out->host_names != NULL, "out of memory");
    for (long h = 0; h < hosts; h++) {
        EXPECT(next_line(&c, f, n, 5) == 3 && is_word(f[0], n[0], "host") && number_of(f[1], n[1], hosts) == h &&
                   node_job_valid_name(f[2], n[2]),
               "expected `host %ld <name of [A-Za-z0-9._-]>`", h);
        memcpy(out->host_names[h], f[2], n[2]);
        for (long k = 0; k < h; k++)
            EXPECT(strcmp(out->host_names[k], out->host_names[h]) != 0, "host %s twice", out->host_names[h]);
    }
    long ranks;
    EXPECT(next_line(&c, f, n, 5) == 2 && is_word(f[0], n[0], "ranks") &&
               (ranks = number_of(f[1], n[1], NODE_JOB_MAX_RANKS)) > 0,
           "expected `ranks <1-%d>`", NODE_JOB_MAX_RANKS);
    out->rank_count = (int) ranks;
    out->rank_host = calloc((size_t) ranks, sizeof *out->rank_host);
    out->rank_container = calloc((size_t) ranks, sizeof *out->rank_container);
    EXPECT(out->rank_host != NULL && out->rank_container != NULL, "out of memory");
    for (long r = 0; r < ranks; r++) {
        long host;
        EXPECT(next_line(&c, f, n, 5) == 4 && is_word(f[0], n[0], "rank") && number_of(f[1], n[1], ranks) == r &&
                   (host = number_of(f[2], n[2], hosts - 1)) >= 0 && node_job_valid_name(f[3], n[3]),
               "expected `rank %ld <host index> <container name>`", r);
        out->rank_host[r] = (int) host;
        memcpy(out->rank_container[r], f[3], n[3]);
    }
    EXPECT(next_line(&c, f, n, 5) == 1 && is_word(f[0], n[0], "paths"), "expected `paths`");
    const char *letters = version == 1 ? "smtr" : "smthr";
    for (long r = 0; r < ranks; r++) {
        EXPECT(next_line(&c, f, n, 5) == 1 && n[0] == (size_t) ranks, "expected a row of %ld path letters", ranks);
        for (long j = 0; j < ranks; j++) {
            char letter = f[0][j];
            int same_host = out->rank_host[r] == out->rank_host[j];
            EXPECT(strchr(letters, letter) != NULL && (letter == 's') == (r == j) &&
                       (same_host || letter == 't' || letter == 'h' || letter == 'r') &&
                       (!same_host || letter != 'h') && (!same_host || letter != 'r'),
                   "path %c from rank %ld to %ld is not valid in version %d between %s hosts", letter, r, j, version,
                   same_host ? "the same" : "different");
        }
    }
    EXPECT(next_line(&c, f, n, 5) == 1 && is_word(f[0], n[0], "end") && c.at == c.end, "expected `end` last");
#undef EXPECT
    out->text = malloc(size + 2);
    if (out->text == NULL) {
        node_job_free_table(out);
        return fail(why, why_size, "out of memory");
    }
    for (size_t i = 0; i < size; i++) out->text[i] = encoded[i] == ',' ? '\n' : encoded[i];
    out->text[size] = '\n';
    out->text[size + 1] = '\0';
    out->text_length = size + 1;
    return 0;
}

void node_job_free_table(struct node_job_table *table)
{
    free(table->host_names);
    free(table->rank_host);
    free(table->rank_container);
    free(table->text);
    table->host_names = NULL;
    table->rank_host = NULL;
    table->rank_container = NULL;
    table->text = NULL;
}

int node_job_host_index(const struct node_job_table *table, const char *node)
{
    for (int h = 0; h < table->host_count; h++)
        if (strcmp(table->host_names[h], node) == 0) return h;
    return -1;
}

/* "a.b.c.d:port" with each part in range. */
static int valid_address(const char *text, size_t length)
{
    int dots = 0, colon = 0;
    long part = 0;
    size_t digits = 0;
    for (size_t i = 0; i <= length; i++) {
        char ch = i == length ? '\0' : text[i];
        if (isdigit((unsigned char) ch)) {
            part = part * 10 + (ch - '0');
            if (++digits > 5) return 0;
            continue;
        }
        if (digits == 0 || part > (colon ? 65535 : 255)) return 0;
        if (ch == '.' && !colon)
            dots++;
        else if (ch == ':' && dots == 3 && !colon)
            colon = 1;
        else if (ch != '\0')
            return 0;
        part = 0;
        digits = 0;
    }
    return dots == 3 && colon;
}

int node_job_peers(const char *agents_file, const struct node_job_table *table, char *peers, size_t peers_size,
                   char *why, size_t why_size)
{
    int fd = open(agents_file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return fail(why, why_size, "cannot open the agents file %s: %s", agents_file, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        close(fd);
        return fail(why, why_size,
                    "refusing the agents file %s: it must be a regular file of root's, not writable by group or "
                    "others, at most %d bytes",
                    agents_file, MAX_AGENTS_FILE);
    }
    size_t got;
    char *text = node_job_read_all(fd, MAX_AGENTS_FILE, &got);
    if (text == NULL) return fail(why, why_size, "cannot read the agents file %s", agents_file);
    size_t used = 0;
    peers[0] = '\0';
    int result = 0;
    for (int h = 0; h < table->host_count && result == 0; h++) {
        const char *address = NULL;
        size_t address_length = 0;
        for (char *line = text; line != NULL && *line != '\0';) {
            char *end = strchr(line, '\n');
            size_t length = end == NULL ? strlen(line) : (size_t) (end - line);
            char *space = memchr(line, ' ', length);
            if (line[0] != '#' && space != NULL && (size_t) (space - line) == strlen(table->host_names[h]) &&
                memcmp(line, table->host_names[h], (size_t) (space - line)) == 0) {
                address = space + 1;
                address_length = length - (size_t) (space - line) - 1;
            }
            line = end == NULL ? NULL : end + 1;
        }
        if (address == NULL)
            result = fail(why, why_size, "node %s is not in the agents file %s: it runs no freeflow agent",
                          table->host_names[h], agents_file);
        else if (!valid_address(address, address_length))
            result = fail(why, why_size, "the agents file %s gives node %s a bad address (want <ipv4>:<port>)",
                          agents_file, table->host_names[h]);
        else {
            int wrote = snprintf(peers + used, peers_size - used, "%s%d@%.*s", h == 0 ? "" : ",", h,
                                 (int) address_length, address);
            if (wrote < 0 || (size_t) wrote >= peers_size - used)
                result = fail(why, why_size, "the job's peer list is too long");
            else
                used += (size_t) wrote;
        }
    }
    free(text);
    return result;
}

char *node_job_read_all(int fd, size_t max, size_t *size_out)
{
    struct stat st;
    char *text = NULL;
    size_t got = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t) st.st_size <= max)
        text = malloc((size_t) st.st_size + 1);
    while (text != NULL && got < (size_t) st.st_size) {
        ssize_t r = read(fd, text + got, (size_t) st.st_size - got);
        if (r <= 0) break;
        got += (size_t) r;
    }
    close(fd);
    if (text == NULL || got != (size_t) st.st_size) {
        free(text);
        return NULL;
    }
    text[got] = '\0';
    *size_out = got;
    return text;
}

static int remove_below(int dir_fd, int depth)
{
    DIR *dir = fdopendir(dir_fd);
    if (dir == NULL) {
        close(dir_fd);
        return -1;
    }
    int result = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        if (unlinkat(dirfd(dir), entry->d_name, 0) == 0) continue;
        if ((errno != EISDIR && errno != EPERM) || depth >= MAX_TREE_DEPTH) {
            result = -1;
            continue;
        }
        int child = openat(dirfd(dir), entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (child < 0 || remove_below(child, depth + 1) != 0 || unlinkat(dirfd(dir), entry->d_name, AT_REMOVEDIR) != 0)
            result = -1;
    }
    closedir(dir);
    return result;
}

int node_job_remove_tree(int parent_fd, const char *name)
{
    int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : -1;
    if (remove_below(fd, 0) != 0) return -1;
    return unlinkat(parent_fd, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -1;
}

int node_job_agent_request(const char *control, int *fd_inout, const char *request, char *reply, size_t reply_size)
{
    int fd = *fd_inout;
    if (fd < 0) {
        struct sockaddr_un address = {.sun_family = AF_UNIX};
        if (strlen(control) >= sizeof address.sun_path) return -1;
        strcpy(address.sun_path, control);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -1;
        struct timeval timeout = {.tv_sec = AGENT_REPLY_TIMEOUT_SECONDS};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
        if (connect(fd, (struct sockaddr *) &address, sizeof address) != 0) {
            snprintf(reply, reply_size, "cannot connect to %s: %s", control, strerror(errno));
            close(fd);
            return -1;
        }
    }
    size_t length = strlen(request), sent = 0;
    while (sent < length) {
        ssize_t w = send(fd, request + sent, length - sent, MSG_NOSIGNAL);
        if (w <= 0) break;
        sent += (size_t) w;
    }
    size_t got = 0;
    while (sent == length && got + 1 < reply_size) {
        ssize_t r = recv(fd, reply + got, 1, 0);
        if (r <= 0 || reply[got] == '\n') break;
        got++;
    }
    reply[got] = '\0';
    int ok = sent == length && strncmp(reply, "ok", 2) == 0;
    if (sent != length || got == 0) snprintf(reply, reply_size, "no reply from %s", control);
    if (ok && *fd_inout < 0)
        *fd_inout = fd;
    else if (*fd_inout < 0)
        close(fd);
    return ok ? 0 : -1;
}
