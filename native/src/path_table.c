/*
 * Reader of the orchestrator's path table (docs/path-table.md, format versions 1 and 2). Strict: a table
 * that does not follow the format exactly is refused with the line and the problem, never guessed at.
 */
#define _POSIX_C_SOURCE 200809L
#include "freeflow.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Versions this reader knows: 1, and 2 which adds the path `h` (host-network handoff). Version 1 tables
 * stay readable because ffrun still writes them whenever no pair is planned `h`. */
#define PATH_TABLE_MAJOR_MIN 1
#define PATH_TABLE_MAJOR     2
#define MAX_FILE_BYTES       (256u << 20)
#define MAX_RANKS            (1u << 16)
#define MAX_HOSTS            MAX_RANKS
#define MAX_JOB_ID           63
#define NAME_RULE            "1-64 characters of [A-Za-z0-9._-], not starting with '.'"

struct ff_path_table {
    char job_id[64];
    ff_job_key_t key;
    uint32_t num_hosts;
    uint32_t num_ranks;
    char **host_names;   /* [num_hosts] */
    int32_t *host_of;    /* [num_ranks] */
    char **container_of; /* [num_ranks] */
    uint8_t *paths;      /* [num_ranks * num_ranks] of ff_path_kind_t */
    uint32_t *shm_peers; /* [num_ranks] */
    char *text;          /* what was parsed, unchanged (ff_path_table_text) */
    size_t text_length;
};

struct parser {
    char *cursor;
    unsigned line_number;
    char *error;
    size_t error_len;
};

static ff_status_t fail(struct parser *p, const char *format, ...)
{
    if (p->error && p->error_len) {
        int n = snprintf(p->error, p->error_len, "line %u: ", p->line_number);
        va_list args;
        va_start(args, format);
        if (n >= 0 && (size_t) n < p->error_len) {
            vsnprintf(p->error + n, p->error_len - (size_t) n, format, args);
        }
        va_end(args);
    }
    return FF_ERR_PARSE;
}

/* The next line that is neither empty nor a comment, without its newline; NULL at the end. */
static char *next_line(struct parser *p)
{
    while (p->cursor && *p->cursor) {
        char *line = p->cursor;
        char *newline = strchr(line, '\n');
        if (newline) {
            *newline = '\0';
            p->cursor = newline + 1;
        } else {
            p->cursor = NULL;
        }
        ++p->line_number;
        if (line[0] != '\0' && line[0] != '#') {
            return line;
        }
    }
    return NULL;
}

/* A decimal number as the writer prints it: digits only, no sign, space or leading zero. */
static bool parse_u32(const char *text, uint32_t *out)
{
    size_t length = strlen(text);
    if (length == 0 || length > 10 || (text[0] == '0' && length > 1)) {
        return false;
    }
    uint64_t value = 0;
    for (size_t i = 0; i < length; ++i) {
        if (text[i] < '0' || text[i] > '9') {
            return false;
        }
        value = value * 10 + (uint64_t) (text[i] - '0');
    }
    if (value > UINT32_MAX) {
        return false;
    }
    *out = (uint32_t) value;
    return true;
}

/* Splits `line` at every space into at most `max` fields; returns the field count, or max + 1 for more.
 * Two spaces in a row, or one at either end, make an empty field, which no directive accepts. */
static int split(char *line, char **fields, int max)
{
    int count = 0;
    char *field = line;
    for (char *c = line;; ++c) {
        if (*c != ' ' && *c != '\0') {
            continue;
        }
        if (count == max) {
            return max + 1;
        }
        fields[count++] = field;
        if (*c == '\0') {
            return count;
        }
        *c = '\0';
        field = c + 1;
    }
}

bool ff_path_table_name_valid(const char *name)
{
    size_t length = name ? strlen(name) : 0;
    if (length == 0 || length > FF_PATH_TABLE_MAX_NAME || name[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < length; ++i) {
        const char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-')) {
            return false;
        }
    }
    return true;
}

static bool job_id_valid(const char *id)
{
    size_t length = strlen(id);
    if (length == 0 || length > MAX_JOB_ID) {
        return false;
    }
    for (size_t i = 0; i < length; ++i) {
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9'))) {
            return false;
        }
    }
    return true;
}

/* The key as ffrun writes it: exactly 32 lower-case hex digits, one spelling per key. */
static bool key_parse(const char *hex, ff_job_key_t *key)
{
    if (strlen(hex) != 32) {
        return false;
    }
    for (size_t i = 0; i < 32; ++i) {
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'))) {
            return false;
        }
    }
    return ff_job_key_parse(hex, key) == FF_OK;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Host names name the nodes a reader looks itself up by (the SPANK plugin), so two hosts of one name would
 * make that look-up ambiguous. Sorted copies of the pointers: n log n on a hostile table of many hosts. */
static ff_status_t check_unique_hosts(struct parser *p, const ff_path_table_t *t)
{
    const char **sorted = malloc(t->num_hosts * sizeof(*sorted));
    if (!sorted) {
        return FF_ERR_NO_MEMORY;
    }
    memcpy(sorted, t->host_names, t->num_hosts * sizeof(*sorted));
    qsort(sorted, t->num_hosts, sizeof(*sorted), compare_names);
    ff_status_t status = FF_OK;
    for (uint32_t h = 1; h < t->num_hosts && status == FF_OK; ++h) {
        if (strcmp(sorted[h - 1], sorted[h]) == 0) {
            status = fail(p, "host `%s` is listed twice (host names must be unique)", sorted[h]);
        }
    }
    free(sorted);
    return status;
}

/* -1 for a character this version of the format does not define: `h` is unknown in a version 1 table, so
 * an old table can never smuggle in a path its writer did not know. */
static int path_from_char(char c, uint32_t major)
{
    switch (c) {
    case 's': return FF_PATH_SELF;
    case 'm': return FF_PATH_SHM;
    case 't': return FF_PATH_TCP;
    case 'r': return FF_PATH_ROUTER;
    case 'h': return major >= 2 ? FF_PATH_HANDOFF : -1;
    default: return -1;
    }
}

static ff_status_t expect_keyword_u32(struct parser *p, const char *keyword, uint32_t *value)
{
    char *fields[3];
    char *line = next_line(p);
    if (!line) {
        return fail(p, "the file ends before `%s` (truncated table)", keyword);
    }
    int n = split(line, fields, 2);
    if (n != 2 || strcmp(fields[0], keyword) != 0 || !parse_u32(fields[1], value)) {
        return fail(p, "expected `%s <number>`", keyword);
    }
    return FF_OK;
}

static ff_status_t parse(struct parser *p, ff_path_table_t *t)
{
    char *fields[5];
    char *line = next_line(p);
    if (!line) {
        return fail(p, "empty file");
    }
    uint32_t major = 0;
    if (split(line, fields, 2) != 2 || strcmp(fields[0], "freeflow-path-table") != 0) {
        return fail(p, "not a freeflow path table (first line must be `freeflow-path-table <version>`)");
    }
    if (!parse_u32(fields[1], &major)) {
        return fail(p, "bad version `%s`", fields[1]);
    }
    if (major < PATH_TABLE_MAJOR_MIN || major > PATH_TABLE_MAJOR) {
        fail(p, "format version %u; this reader knows versions %d..%d", major, PATH_TABLE_MAJOR_MIN, PATH_TABLE_MAJOR);
        return FF_ERR_UNSUPPORTED_VERSION;
    }

    line = next_line(p);
    if (!line || split(line, fields, 2) != 2 || strcmp(fields[0], "job") != 0 || !job_id_valid(fields[1])) {
        return fail(p, "expected `job <id>`, the id 1-%d characters of [a-z0-9]", MAX_JOB_ID);
    }
    strcpy(t->job_id, fields[1]);

    line = next_line(p);
    if (!line || split(line, fields, 2) != 2 || strcmp(fields[0], "key") != 0 || !key_parse(fields[1], &t->key)) {
        return fail(p, "expected `key <32 lower-case hex digits>`");
    }

    ff_status_t status = expect_keyword_u32(p, "hosts", &t->num_hosts);
    if (status != FF_OK) {
        return status;
    }
    if (t->num_hosts == 0 || t->num_hosts > MAX_HOSTS) {
        return fail(p, "host count %u out of range 1..%u", t->num_hosts, MAX_HOSTS);
    }
    t->host_names = calloc(t->num_hosts, sizeof(*t->host_names));
    if (!t->host_names) {
        return FF_ERR_NO_MEMORY;
    }
    for (uint32_t h = 0; h < t->num_hosts; ++h) {
        uint32_t index;
        line = next_line(p);
        if (!line || split(line, fields, 3) != 3 || strcmp(fields[0], "host") != 0 || !parse_u32(fields[1], &index) ||
            index != h) {
            return fail(p, "expected `host %u <name>`", h);
        }
        /* not echoed: an invalid name may hold bytes that a terminal would act on */
        if (!ff_path_table_name_valid(fields[2])) {
            return fail(p, "the name of host %u is not " NAME_RULE, h);
        }
        t->host_names[h] = strdup(fields[2]);
        if (!t->host_names[h]) {
            return FF_ERR_NO_MEMORY;
        }
    }
    status = check_unique_hosts(p, t);
    if (status != FF_OK) {
        return status;
    }

    status = expect_keyword_u32(p, "ranks", &t->num_ranks);
    if (status != FF_OK) {
        return status;
    }
    if (t->num_ranks == 0 || t->num_ranks > MAX_RANKS) {
        return fail(p, "rank count %u out of range 1..%u", t->num_ranks, MAX_RANKS);
    }
    const size_t n = t->num_ranks;
    t->host_of = calloc(n, sizeof(*t->host_of));
    t->container_of = calloc(n, sizeof(*t->container_of));
    t->paths = malloc(n * n);
    t->shm_peers = calloc(n, sizeof(*t->shm_peers));
    if (!t->host_of || !t->container_of || !t->paths || !t->shm_peers) {
        return FF_ERR_NO_MEMORY;
    }
    for (uint32_t r = 0; r < t->num_ranks; ++r) {
        uint32_t index, host;
        line = next_line(p);
        if (!line || split(line, fields, 4) != 4 || strcmp(fields[0], "rank") != 0 || !parse_u32(fields[1], &index) ||
            index != r || !parse_u32(fields[2], &host)) {
            return fail(p, "expected `rank %u <host index> <container>`", r);
        }
        if (host >= t->num_hosts) {
            return fail(p, "rank %u is on host %u, but there are %u hosts", r, host, t->num_hosts);
        }
        if (!ff_path_table_name_valid(fields[3])) {
            return fail(p, "the container name of rank %u is not " NAME_RULE, r);
        }
        t->host_of[r] = (int32_t) host;
        t->container_of[r] = strdup(fields[3]);
        if (!t->container_of[r]) {
            return FF_ERR_NO_MEMORY;
        }
    }

    line = next_line(p);
    if (!line || strcmp(line, "paths") != 0) {
        return fail(p, "expected `paths`");
    }
    for (uint32_t r = 0; r < t->num_ranks; ++r) {
        line = next_line(p);
        if (!line || strlen(line) != n) {
            return fail(p, "expected the path row of rank %u: %u characters", r, t->num_ranks);
        }
        for (uint32_t c = 0; c < t->num_ranks; ++c) {
            int kind = path_from_char(line[c], major);
            if (kind < 0) {
                return fail(p, "unknown path `%c` from rank %u to rank %u (format %u knows: %s)", line[c], r, c, major,
                            major >= 2 ? "s m t h r" : "s m t r");
            }
            /* Shared memory needs one host; handoff and the router join two hosts' agents. A letter where it
             * cannot mean anything is a writer's bug, refused rather than half-trusted. */
            const bool same_host = t->host_of[r] == t->host_of[c];
            if (kind == FF_PATH_SHM && !same_host) {
                return fail(p, "path from rank %u to rank %u: `m` is for ranks on the same host only", r, c);
            }
            if ((kind == FF_PATH_HANDOFF || kind == FF_PATH_ROUTER) && same_host) {
                return fail(p, "path from rank %u to rank %u: `%c` is for ranks on different hosts only", r, c,
                            line[c]);
            }
            if ((kind == FF_PATH_SELF) != (r == c)) {
                return fail(p, "path from rank %u to rank %u: `s` is for a rank to itself only", r, c);
            }
            t->paths[(size_t) r * n + c] = (uint8_t) kind;
            if (kind == FF_PATH_SHM) {
                ++t->shm_peers[r];
            }
        }
    }
    line = next_line(p);
    if (!line || strcmp(line, "end") != 0) {
        return fail(p, "expected `end` (truncated table?)");
    }
    if (next_line(p)) {
        return fail(p, "unexpected text after `end`");
    }
    return FF_OK;
}

static ff_status_t parse_owned(char *text, ff_path_table_t **out, char *error, size_t error_len);

static char *read_file(const char *file, ff_status_t *status)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        *status = errno == ENOENT ? FF_ERR_NOT_FOUND : FF_ERR_SYSTEM;
        return NULL;
    }
    size_t capacity = 4096, length = 0;
    char *text = malloc(capacity);
    while (text) {
        if (length + 1 >= capacity) {
            if (capacity >= MAX_FILE_BYTES) {
                free(text);
                fclose(f);
                *status = FF_ERR_PARSE;
                return NULL;
            }
            char *bigger = realloc(text, capacity * 2);
            if (!bigger) {
                free(text);
                text = NULL;
                break;
            }
            text = bigger;
            capacity *= 2;
        }
        size_t got = fread(text + length, 1, capacity - length - 1, f);
        length += got;
        if (got == 0) {
            break;
        }
    }
    int failed = ferror(f);
    fclose(f);
    if (!text) {
        *status = FF_ERR_NO_MEMORY;
        return NULL;
    }
    if (failed) {
        free(text);
        *status = FF_ERR_SYSTEM;
        return NULL;
    }
    text[length] = '\0';
    if (strlen(text) != length) {
        free(text);
        *status = FF_ERR_PARSE;
        return NULL;
    }
    *status = FF_OK;
    return text;
}

ff_status_t ff_path_table_load(const char *file, ff_path_table_t **out, char *error, size_t error_len)
{
    if (!file || !out) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    if (error && error_len) {
        error[0] = '\0';
    }
    ff_status_t status;
    char *text = read_file(file, &status);
    if (!text) {
        if (status == FF_ERR_PARSE && error && error_len) {
            snprintf(error, error_len, "not a text file of at most %u bytes", MAX_FILE_BYTES);
        }
        return status;
    }
    return parse_owned(text, out, error, error_len);
}

/* Parses `text` (malloc'd; owned by the table from here on, or freed). The parser splits lines in place, so
 * it works on a copy and the table keeps the text as it came. */
static ff_status_t parse_owned(char *text, ff_path_table_t **out, char *error, size_t error_len)
{
    const size_t length = strlen(text);
    if (length > MAX_FILE_BYTES) {
        free(text);
        return FF_ERR_PARSE;
    }
    ff_path_table_t *table = calloc(1, sizeof(*table));
    char *scratch = malloc(length + 1);
    if (!table || !scratch) {
        free(table);
        free(scratch);
        free(text);
        return FF_ERR_NO_MEMORY;
    }
    table->text = text;
    table->text_length = length;
    memcpy(scratch, text, length + 1);
    struct parser parser = {.cursor = scratch, .line_number = 0, .error = error, .error_len = error_len};
    ff_status_t status = parse(&parser, table);
    free(scratch);
    if (status != FF_OK) {
        ff_path_table_free(table);
        return status;
    }
    *out = table;
    return FF_OK;
}

ff_status_t ff_path_table_parse(const char *text, ff_path_table_t **out, char *error, size_t error_len)
{
    if (!text || !out) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    if (error && error_len) {
        error[0] = '\0';
    }
    char *copy = strdup(text);
    if (!copy) {
        return FF_ERR_NO_MEMORY;
    }
    return parse_owned(copy, out, error, error_len);
}

ff_status_t ff_path_table_load_at(int dirfd, const char *name, ff_path_table_t **out, char *error, size_t error_len)
{
    if (dirfd < 0 || !name || !out) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    if (error && error_len) {
        error[0] = '\0';
    }
    char *text = NULL;
    ff_status_t status = ff_dir_read_trusted(dirfd, name, MAX_FILE_BYTES, &text, error, error_len);
    if (status != FF_OK) {
        return status;
    }
    return parse_owned(text, out, error, error_len);
}

void ff_path_table_free(ff_path_table_t *table)
{
    if (!table) {
        return;
    }
    if (table->container_of) {
        for (uint32_t r = 0; r < table->num_ranks; ++r) {
            free(table->container_of[r]);
        }
    }
    free(table->container_of);
    if (table->host_names) {
        for (uint32_t h = 0; h < table->num_hosts; ++h) {
            free(table->host_names[h]);
        }
    }
    free(table->host_names);
    free(table->text);
    free(table->host_of);
    free(table->paths);
    free(table->shm_peers);
    free(table);
}

uint32_t ff_path_table_num_ranks(const ff_path_table_t *table)
{
    return table->num_ranks;
}

uint32_t ff_path_table_num_hosts(const ff_path_table_t *table)
{
    return table->num_hosts;
}

const ff_job_key_t *ff_path_table_job_key(const ff_path_table_t *table)
{
    return &table->key;
}

const char *ff_path_table_job_id(const ff_path_table_t *table)
{
    return table->job_id;
}

int32_t ff_path_table_host_of(const ff_path_table_t *table, uint32_t rank)
{
    return rank < table->num_ranks ? table->host_of[rank] : -1;
}

const char *ff_path_table_container_of(const ff_path_table_t *table, uint32_t rank)
{
    return rank < table->num_ranks ? table->container_of[rank] : NULL;
}

const char *ff_path_table_host_name(const ff_path_table_t *table, uint32_t host)
{
    return host < table->num_hosts ? table->host_names[host] : NULL;
}

int32_t ff_path_table_host_index(const ff_path_table_t *table, const char *name)
{
    for (uint32_t h = 0; name && h < table->num_hosts; ++h) {
        if (strcmp(table->host_names[h], name) == 0) {
            return (int32_t) h;
        }
    }
    return -1;
}

const char *ff_path_table_text(const ff_path_table_t *table, size_t *length)
{
    if (length) {
        *length = table->text_length;
    }
    return table->text;
}

ff_path_kind_t ff_path_table_path(const ff_path_table_t *table, uint32_t from, uint32_t to)
{
    if (from >= table->num_ranks || to >= table->num_ranks) {
        return FF_PATH_KIND_COUNT;
    }
    return (ff_path_kind_t) table->paths[(size_t) from * table->num_ranks + to];
}

uint32_t ff_path_table_shm_peers(const ff_path_table_t *table, uint32_t rank)
{
    return rank < table->num_ranks ? table->shm_peers[rank] : 0;
}

const char *ff_path_kind_name(ff_path_kind_t kind)
{
    switch (kind) {
    case FF_PATH_SELF: return "self";
    case FF_PATH_SHM: return "shm";
    case FF_PATH_TCP: return "tcp";
    case FF_PATH_ROUTER: return "router";
    case FF_PATH_HANDOFF: return "handoff";
    default: return "unknown";
    }
}
