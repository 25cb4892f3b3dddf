#include "report.h"

#include <math.h>

/* Column layout of OSU's print functions: size left-aligned in 10, values in 20 with 2 decimals. */
enum { SIZE_COLUMN = 10, VALUE_COLUMN = 20, DECIMALS = 2 };

struct metrics {
    double latency_us;     /* latency: half round trip; collectives: max over ranks */
    double latency_avg_us; /* collectives: average over ranks */
    double latency_min_us; /* collectives: min over ranks */
    double bandwidth_mb_s; /* 10^6 bytes per second, like OSU */
    double message_rate_per_s;
    double cpu_ns_per_byte;
};

static struct metrics derive(enum ffb_metric metric, const struct ffb_result *r)
{
    struct metrics m = {NAN, NAN, NAN, NAN, NAN, NAN};
    const double per_iteration_us = 1e6 / (double) r->iterations;
    switch (metric) {
    case FFB_METRIC_LATENCY: m.latency_us = r->elapsed_avg_s * per_iteration_us / 2; break;
    case FFB_METRIC_BANDWIDTH:
    case FFB_METRIC_MESSAGE_RATE:
        m.bandwidth_mb_s = r->bytes_moved / r->elapsed_avg_s / 1e6;
        m.message_rate_per_s = r->bytes_moved / (double) r->size / r->elapsed_avg_s;
        break;
    case FFB_METRIC_COLLECTIVE:
        m.latency_us = r->elapsed_max_s * per_iteration_us;
        m.latency_avg_us = r->elapsed_avg_s * per_iteration_us;
        m.latency_min_us = r->elapsed_min_s * per_iteration_us;
        break;
    }
    m.cpu_ns_per_byte = (r->cpu_user_s + r->cpu_sys_s) * 1e9 / r->bytes_moved;
    return m;
}

static const char *metric_name(enum ffb_metric metric)
{
    switch (metric) {
    case FFB_METRIC_LATENCY: return "latency";
    case FFB_METRIC_BANDWIDTH: return "bandwidth";
    case FFB_METRIC_MESSAGE_RATE: return "message_rate";
    case FFB_METRIC_COLLECTIVE: return "collective";
    }
    return "unknown";
}

/* OSU's column headers, then ours. */
static const char *columns(enum ffb_metric metric)
{
    switch (metric) {
    case FFB_METRIC_LATENCY: return "# Size          Latency (us)";
    case FFB_METRIC_BANDWIDTH: return "# Size      Bandwidth (MB/s)";
    case FFB_METRIC_MESSAGE_RATE: return "# Size                  MB/s        Messages/s";
    case FFB_METRIC_COLLECTIVE:
        return "# Size       Avg Latency(us)      Min Latency(us)      Max Latency(us)  Iterations";
    }
    return "# Size";
}

void ffb_print_header(FILE *out, const struct ffb_options *opt, const struct ffb_job_info *job)
{
    fprintf(out, "# " FFB_PROGRAM " %s: %s (freeflow, output format %d)\n", opt->bench->name, opt->bench->title,
            FFB_SCHEMA_VERSION);
    fprintf(out, "# %s\n# %d ranks:", job->library_version, job->nranks);
    for (int r = 0; r < job->nranks; r++)
        fprintf(out, " %d=%s(cpu %s)", r, ffb_rank_hostname(job, r), ffb_rank_cpus(job, r));
    fprintf(out, "\n");
    if (opt->bench->windowed)
        fprintf(out, "# Window size: %d%s\n", opt->window,
                opt->validate ? " (less for large messages: validation holds every message of a window)" : "");
    if (opt->validate) fprintf(out, "# Validation mode: every received byte is checked; timings are not meaningful\n");
    fprintf(out, "%s      CPU (ns/B)%s\n", columns(opt->bench->metric),
            opt->validate ? "     Checked (B)         Bad (B)" : "");
    fflush(out);
}

void ffb_print_row(FILE *out, const struct ffb_options *opt, const struct ffb_result *r)
{
    const struct metrics m = derive(opt->bench->metric, r);
    fprintf(out, "%-*zu", SIZE_COLUMN, r->size);
    switch (opt->bench->metric) {
    case FFB_METRIC_LATENCY: fprintf(out, "%*.*f", VALUE_COLUMN, DECIMALS, m.latency_us); break;
    case FFB_METRIC_BANDWIDTH: fprintf(out, "%*.*f", VALUE_COLUMN, DECIMALS, m.bandwidth_mb_s); break;
    case FFB_METRIC_MESSAGE_RATE:
        fprintf(out, "%*.*f%*.*f", VALUE_COLUMN, DECIMALS, m.bandwidth_mb_s, VALUE_COLUMN, DECIMALS,
                m.message_rate_per_s);
        break;
    case FFB_METRIC_COLLECTIVE:
        fprintf(out, "%*.*f%*.*f%*.*f%*ld", VALUE_COLUMN, DECIMALS, m.latency_avg_us, VALUE_COLUMN, DECIMALS,
                m.latency_min_us, VALUE_COLUMN, DECIMALS, m.latency_us, 12, r->iterations);
        break;
    }
    fprintf(out, "%16.3f", m.cpu_ns_per_byte);
    if (opt->validate) fprintf(out, "%16llu%16llu", r->checked_bytes, r->bad_bytes);
    fprintf(out, "\n");
    fflush(out);
}

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* JSON has no NaN or infinity: a value that cannot be computed is null. */
static void json_number(FILE *out, double v)
{
    if (isfinite(v))
        fprintf(out, "%.9g", v);
    else
        fputs("null", out);
}

static void json_field(FILE *out, const char *name, double v)
{
    fprintf(out, ", \"%s\": ", name);
    json_number(out, v);
}

static void json_result(FILE *out, const struct ffb_options *opt, const struct ffb_result *r)
{
    const struct metrics m = derive(opt->bench->metric, r);
    fprintf(out, "    {\"size\": %zu, \"iterations\": %ld, \"warmup\": %ld", r->size, r->iterations, r->warmup);
    if (opt->bench->windowed) fprintf(out, ", \"window\": %d", r->window);
    json_field(out, "elapsed_s", r->elapsed_avg_s);
    json_field(out, "bytes_moved", r->bytes_moved);
    switch (opt->bench->metric) {
    case FFB_METRIC_LATENCY: json_field(out, "latency_us", m.latency_us); break;
    case FFB_METRIC_BANDWIDTH:
    case FFB_METRIC_MESSAGE_RATE:
        json_field(out, "bandwidth_mb_s", m.bandwidth_mb_s);
        json_field(out, "bandwidth_gb_s", m.bandwidth_mb_s / 1e3);
        json_field(out, "message_rate_per_s", m.message_rate_per_s);
        break;
    case FFB_METRIC_COLLECTIVE:
        json_field(out, "latency_us", m.latency_us);
        json_field(out, "latency_avg_us", m.latency_avg_us);
        json_field(out, "latency_min_us", m.latency_min_us);
        break;
    }
    json_field(out, "cpu_user_s", r->cpu_user_s);
    json_field(out, "cpu_sys_s", r->cpu_sys_s);
    json_field(out, "cpu_ns_per_byte", m.cpu_ns_per_byte);
    fprintf(out, ", \"checked_bytes\": %llu, \"bad_bytes\": %llu}", r->checked_bytes, r->bad_bytes);
}

static void json_rank_strings(FILE *out, const struct ffb_job_info *job,
                              const char *(*field)(const struct ffb_job_info *, int) )
{
    fputc('[', out);
    for (int r = 0; r < job->nranks; r++) {
        if (r > 0) fputs(", ", out);
        json_string(out, field(job, r));
    }
    fputc(']', out);
}

void ffb_write_json(FILE *out, const struct ffb_options *opt, const struct ffb_job_info *job,
                    const struct ffb_result *results, int nresults)
{
    unsigned long long checked = 0, bad = 0;
    for (int i = 0; i < nresults; i++) {
        checked += results[i].checked_bytes;
        bad += results[i].bad_bytes;
    }
    fprintf(out, "{\n  \"schema\": \"freeflow-bench-mpi\",\n  \"schema_version\": %d,\n", FFB_SCHEMA_VERSION);
    fprintf(out, "  \"benchmark\": \"%s\",\n  \"metric\": \"%s\",\n", opt->bench->name,
            metric_name(opt->bench->metric));
    /* complete is false when the run stopped before its last size (the results are those measured). */
    fprintf(out, "  \"complete\": %s,\n  \"timing_meaningful\": %s,\n  \"argv\": [",
            nresults == opt->nsizes ? "true" : "false", opt->validate ? "false" : "true");
    for (int i = 0; i < opt->argc; i++) {
        if (i > 0) fputs(", ", out);
        json_string(out, opt->argv[i]);
    }
    fprintf(out, "],\n  \"parameters\": {\"sizes\": [");
    for (int i = 0; i < opt->nsizes; i++) fprintf(out, "%s%zu", i > 0 ? ", " : "", opt->sizes[i]);
    fputs("], \"iterations\": ", out);
    opt->iterations > 0 ? fprintf(out, "%ld", opt->iterations) : fputs("null", out);
    fputs(", \"warmup\": ", out);
    opt->warmup >= 0 ? fprintf(out, "%ld", opt->warmup) : fputs("null", out);
    fputs(", \"window\": ", out);
    opt->bench->windowed ? fprintf(out, "%d", opt->window) : fputs("null", out);
    fprintf(out, ", \"validate\": %s, \"inject_fault\": %s},\n", opt->validate ? "true" : "false",
            opt->inject_fault ? "true" : "false");

    fprintf(out, "  \"job\": {\"ranks\": %d, \"hostnames\": ", job->nranks);
    json_rank_strings(out, job, ffb_rank_hostname);
    fputs(", \"cpus\": ", out);
    json_rank_strings(out, job, ffb_rank_cpus);
    fputs(", \"mpi_library_version\": ", out);
    json_string(out, job->library_version);
    fprintf(out, ", \"mpi_version\": \"%d.%d\"", job->mpi_version, job->mpi_subversion);
    json_field(out, "wtick_s", job->wtick);
    fprintf(out, ", \"started_at\": \"%s\"},\n  \"results\": [\n", job->started_at);
    for (int i = 0; i < nresults; i++) {
        json_result(out, opt, &results[i]);
        fputs(i + 1 < nresults ? ",\n" : "\n", out);
    }
    /* passed is null when nothing was validated, so that a timing run is never read as a validated one. */
    fprintf(
        out,
        "  ],\n  \"validation\": {\"enabled\": %s, \"checked_bytes\": %llu, \"bad_bytes\": %llu, \"passed\": %s}\n}\n",
        opt->validate ? "true" : "false", checked, bad,
        !opt->validate                        ? "null"
        : ffb_validation_passed(checked, bad) ? "true"
                                              : "false");
}
