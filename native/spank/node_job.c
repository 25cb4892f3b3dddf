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

ff_path_table_t *node_job_parse_table(const char *encoded, const char *job, char *why, size_t why_size)
{
    size_t size = strlen(encoded);
    if (size == 0 || size > NODE_JOB_MAX_TABLE) {
        fail(why, why_size, "the path table is empty or larger than %d bytes", NODE_JOB_MAX_TABLE);
        return NULL;
    }
    /* The option's own encoding: ',' ends a line, so a newline (or any control character) can only be
     * smuggled in, and an empty line (",,", or one at the end) has no place in a transported table. */
    for (size_t i = 0; i < size; i++) {
        if ((unsigned char) encoded[i] < 0x20 || encoded[i] == 0x7f) {
            fail(why, why_size, "the path table holds a control character");
            return NULL;
        }
    }
    if (encoded[size - 1] == ',' || strstr(encoded, ",,") != NULL) {
        fail(why, why_size, "the path table has an empty line: expected `end` last");
        return NULL;
    }
    char *text = malloc(size + 2);
    if (text == NULL) {
        fail(why, why_size, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < size; i++) text[i] = encoded[i] == ',' ? '\n' : encoded[i];
    text[size] = '\n';
    text[size + 1] = '\0';
    ff_path_table_t *table = NULL;
    char error[256] = "";
    ff_status_t status = ff_path_table_parse(text, &table, error, sizeof error);
    free(text);
    if (status != FF_OK) {
        /* the core counts lines from 1 as the ','-separated lines of the option */
        fail(why, why_size, "path table %s", error[0] != '\0' ? error : ff_status_describe(status));
        return NULL;
    }
    if (strcmp(ff_path_table_job_id(table), job) != 0) {
        fail(why, why_size, "the path table is of job %s, not of the --freeflow job %s", ff_path_table_job_id(table),
             job);
        ff_path_table_free(table);
        return NULL;
    }
    return table;
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

int node_job_peers(const char *agents_file, const ff_path_table_t *table, char *peers, size_t peers_size, char *why,
                   size_t why_size)
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
    const uint32_t hosts = ff_path_table_num_hosts(table);
    for (uint32_t h = 0; h < hosts && result == 0; h++) {
        const char *name = ff_path_table_host_name(table, h);
        const char *address = NULL;
        size_t address_length = 0;
        for (char *line = text; line != NULL && *line != '\0';) {
            char *end = strchr(line, '\n');
            size_t length = end == NULL ? strlen(line) : (size_t) (end - line);
            char *space = memchr(line, ' ', length);
            if (line[0] != '#' && space != NULL && (size_t) (space - line) == strlen(name) &&
                memcmp(line, name, (size_t) (space - line)) == 0) {
                address = space + 1;
                address_length = length - (size_t) (space - line) - 1;
            }
            line = end == NULL ? NULL : end + 1;
        }
        if (address == NULL)
            result = fail(why, why_size, "node %s is not in the agents file %s: it runs no freeflow agent", name,
                          agents_file);
        else if (!valid_address(address, address_length))
            result = fail(why, why_size, "the agents file %s gives node %s a bad address (want <ipv4>:<port>)",
                          agents_file, name);
        else {
            int wrote = snprintf(peers + used, peers_size - used, "%s%u@%.*s", h == 0 ? "" : ",", (unsigned) h,
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
