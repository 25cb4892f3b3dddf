// The freeflow Node addon: a thin binding over the native probe and the core. Everything it returns is plain data
// (strings, numbers, arrays, objects with camelCase keys); ts-runtime/src/native/addon.ts validates it.
#include <napi.h>

#include <memory>
#include <string>

#include "freeflow.h"
#include "freeflow_probe.h"

namespace
{

// Releases the probe's allocations on every return path (C++ exceptions are off).
class ProbeResult
{
  public:
    ProbeResult() = default;
    ProbeResult(const ProbeResult &) = delete;
    ProbeResult &operator=(const ProbeResult &) = delete;
    ~ProbeResult()
    {
        ff_probe_result_free(&result_);
    }
    ff_probe_result_t *get()
    {
        return &result_;
    }

  private:
    ff_probe_result_t result_{};
};

// Values above 2^53 lose precision as JS numbers; byte counts would have to pass 8 PiB.
Napi::Number Uint64(Napi::Env env, uint64_t value)
{
    return Napi::Number::New(env, static_cast<double>(value));
}

template <typename Item, typename Convert>
Napi::Array ToArray(Napi::Env env, const Item *items, size_t count, Convert convert)
{
    Napi::Array list = Napi::Array::New(env, count);
    for (size_t i = 0; i < count; i++) list.Set(static_cast<uint32_t>(i), convert(items[i]));
    return list;
}

Napi::Object UcxTransport(Napi::Env env, const ff_probe_ucx_transport_t &t)
{
    Napi::Object item = Napi::Object::New(env);
    item.Set("component", t.component);
    item.Set("memoryDomain", t.memory_domain);
    item.Set("transport", t.transport);
    item.Set("device", t.device);
    item.Set("deviceType", ff_probe_ucx_device_type_name(t.device_type));
    return item;
}

Napi::Object RdmaPort(Napi::Env env, const ff_probe_rdma_port_t &p)
{
    Napi::Object port = Napi::Object::New(env);
    port.Set("number", p.number);
    port.Set("state", p.state);
    port.Set("linkLayer", p.link_layer);
    return port;
}

Napi::Object RdmaDevice(Napi::Env env, const ff_probe_rdma_device_t &d)
{
    Napi::Object item = Napi::Object::New(env);
    item.Set("name", d.name);
    item.Set("nodeGuid", d.node_guid);
    item.Set("nodeType", d.node_type);
    item.Set("transport", d.transport);
    item.Set("ports", ToArray(env, d.ports, d.port_count, [env](const auto &p) { return RdmaPort(env, p); }));
    return item;
}

Napi::Object ToObject(Napi::Env env, const std::string &sharedDir, const ff_probe_result_t &result)
{
    Napi::Object ucx = Napi::Object::New(env);
    ucx.Set("version", result.ucx_version);
    ucx.Set("transports", ToArray(env, result.ucx_transports, result.ucx_transport_count,
                                  [env](const auto &t) { return UcxTransport(env, t); }));

    Napi::Object rdma = Napi::Object::New(env);
    rdma.Set("devices", ToArray(env, result.rdma_devices, result.rdma_device_count,
                                [env](const auto &d) { return RdmaDevice(env, d); }));

    Napi::Object cpus = Napi::Object::New(env);
    cpus.Set("configured", result.cpus.configured);
    cpus.Set("online", result.cpus.online);
    cpus.Set("usable", result.cpus.usable);

    const ff_probe_shared_dir_t &fs = result.shared_dir;
    Napi::Object dir = Napi::Object::New(env);
    dir.Set("path", sharedDir);
    dir.Set("fs", fs.fs);
    dir.Set("fsMagic", Uint64(env, fs.fs_magic));
    dir.Set("totalBytes", Uint64(env, fs.total_bytes));
    dir.Set("freeBytes", Uint64(env, fs.free_bytes));
    dir.Set("availableBytes", Uint64(env, fs.available_bytes));

    Napi::Object probe = Napi::Object::New(env);
    probe.Set("ucx", ucx);
    probe.Set("rdma", rdma);
    probe.Set("cpus", cpus);
    probe.Set("sharedDir", dir);
    return probe;
}

// The one string argument of `call` (e.g. "probe(sharedDir)"); false, with a TypeError pending, if there is
// not exactly one string or it holds a NUL (the core takes C strings, which would end early).
bool OneString(const Napi::CallbackInfo &info, const char *call, const char *usage, std::string *out)
{
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsString()) {
        Napi::TypeError::New(env, std::string(call) + " takes one argument: " + usage).ThrowAsJavaScriptException();
        return false;
    }
    *out = info[0].As<Napi::String>().Utf8Value();
    if (out->find('\0') != std::string::npos) {
        Napi::TypeError::New(env, std::string(call) + ": the argument contains a NUL character")
            .ThrowAsJavaScriptException();
        return false;
    }
    return true;
}

// probe(sharedDir: string): HostProbe. Throws a TypeError for a bad argument and an Error whose `status`
// is the probe's status name (e.g. "FF_PROBE_ERR_SHARED_DIR_NOT_FOUND") when probing fails.
Napi::Value Probe(const Napi::CallbackInfo &info)
{
    Napi::Env env = info.Env();
    std::string sharedDir;
    if (!OneString(info, "probe(sharedDir)", "the host's shared directory as an absolute path string", &sharedDir))
        return env.Undefined();

    ProbeResult result;
    char detail[512];
    ff_probe_status_t status = ff_probe_run(sharedDir.c_str(), result.get(), detail, sizeof(detail));
    if (status != FF_PROBE_OK) {
        std::string message =
            std::string(ff_probe_status_name(status)) + ": " + detail + " (" + ff_probe_status_describe(status) + ")";
        Napi::Error error = Napi::Error::New(env, message);
        error.Set("status", ff_probe_status_name(status));
        error.ThrowAsJavaScriptException();
        return env.Undefined();
    }
    return ToObject(env, sharedDir, *result.get());
}

// segmentBytes(ringSize: number, rings: number): number. The shared memory of a segment whose `rings`
// rings have been written through: the core's own formula (docs/btl.md), so reports cannot drift from it.
Napi::Value SegmentBytes(const Napi::CallbackInfo &info)
{
    Napi::Env env = info.Env();
    if (info.Length() != 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
        Napi::TypeError::New(env, "segmentBytes(ringSize, rings) takes two numbers").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    const double ring_size = info[0].As<Napi::Number>().DoubleValue();
    const double rings = info[1].As<Napi::Number>().DoubleValue();
    if (!(ring_size >= 0 && ring_size <= UINT32_MAX && rings >= 0 && rings <= UINT32_MAX)) {
        Napi::RangeError::New(env, "segmentBytes: ringSize and rings must be whole numbers from 0 to 2^32-1")
            .ThrowAsJavaScriptException();
        return env.Undefined();
    }
    return Uint64(env, ff_segment_bytes_for(static_cast<uint32_t>(ring_size), static_cast<uint32_t>(rings)));
}

// Reads {agentReachable: boolean, rdmaActive: boolean}; false (with a TypeError pending) if it is not that.
bool HostCaps(Napi::Env env, const Napi::Value &value, ff_host_caps_t *caps)
{
    if (value.IsObject()) {
        Napi::Object object = value.As<Napi::Object>();
        Napi::Value agent = object.Get("agentReachable"), rdma = object.Get("rdmaActive");
        if (agent.IsBoolean() && rdma.IsBoolean()) {
            caps->agent_reachable = agent.As<Napi::Boolean>().Value();
            caps->rdma_active = rdma.As<Napi::Boolean>().Value();
            return true;
        }
    }
    Napi::TypeError::New(env, "planeDecide: each host is {agentReachable: boolean, rdmaActive: boolean}")
        .ThrowAsJavaScriptException();
    return false;
}

// planeDecide(choice: string, a: HostCaps, b: HostCaps, agentsReachEachOther: boolean):
// {plane, reason, description}: the core's inter-host plane policy (ff_plane_decide_pair), so that ffrun's
// plan and native callers cannot disagree.
Napi::Value PlaneDecide(const Napi::CallbackInfo &info)
{
    Napi::Env env = info.Env();
    if (info.Length() != 4 || !info[0].IsString() || !info[3].IsBoolean()) {
        Napi::TypeError::New(env, "planeDecide(choice, hostA, hostB, agentsReachEachOther) takes a choice name, two "
                                  "hosts and a boolean")
            .ThrowAsJavaScriptException();
        return env.Undefined();
    }
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    ff_plane_choice_t choice;
    if (name.find('\0') != std::string::npos || ff_plane_choice_parse(name.c_str(), &choice) != FF_OK) {
        Napi::RangeError::New(env, "planeDecide: the choice must be one of auto, handoff, router, tcp")
            .ThrowAsJavaScriptException();
        return env.Undefined();
    }
    ff_host_caps_t a{}, b{};
    if (!HostCaps(env, info[1], &a) || !HostCaps(env, info[2], &b)) return env.Undefined();
    ff_plane_reason_t reason;
    const ff_plane_t plane = ff_plane_decide_pair(choice, &a, &b, info[3].As<Napi::Boolean>().Value(), &reason);
    Napi::Object result = Napi::Object::New(env);
    result.Set("plane", ff_plane_name(plane));
    result.Set("reason", ff_plane_reason_name(reason));
    result.Set("description", ff_plane_reason_describe(reason));
    return result;
}

Napi::Object PathTableToObject(Napi::Env env, const ff_path_table_t *table)
{
    const uint32_t hostCount = ff_path_table_num_hosts(table), rankCount = ff_path_table_num_ranks(table);
    Napi::Array hosts = Napi::Array::New(env, hostCount);
    for (uint32_t h = 0; h < hostCount; h++) {
        Napi::Object host = Napi::Object::New(env);
        host.Set("index", h);
        host.Set("name", ff_path_table_host_name(table, h));
        hosts.Set(h, host);
    }
    Napi::Array ranks = Napi::Array::New(env, rankCount);
    Napi::Array paths = Napi::Array::New(env, rankCount);
    for (uint32_t r = 0; r < rankCount; r++) {
        Napi::Object rank = Napi::Object::New(env);
        rank.Set("rank", r);
        rank.Set("host", ff_path_table_host_of(table, r));
        rank.Set("container", ff_path_table_container_of(table, r));
        ranks.Set(r, rank);
        Napi::Array row = Napi::Array::New(env, rankCount);
        for (uint32_t to = 0; to < rankCount; to++) row.Set(to, ff_path_kind_name(ff_path_table_path(table, r, to)));
        paths.Set(r, row);
    }
    char key[33];
    ff_job_key_format(ff_path_table_job_key(table), key);
    Napi::Object result = Napi::Object::New(env);
    result.Set("jobId", ff_path_table_job_id(table));
    result.Set("key", key);
    result.Set("hosts", hosts);
    result.Set("ranks", ranks);
    result.Set("paths", paths);
    return result;
}

// parsePathTable(text: string): {jobId, key, hosts: [{index, name}], ranks: [{rank, host, container}],
// paths: rows of ff_path_kind_name}: the core's reader (ff_path_table_parse), the one the BTL uses. Throws an
// Error with the core's message and `status` (e.g. "FF_ERR_PARSE") for a table it refuses.
Napi::Value ParsePathTable(const Napi::CallbackInfo &info)
{
    Napi::Env env = info.Env();
    std::string text;
    if (!OneString(info, "parsePathTable(text)", "the table's text", &text)) return env.Undefined();
    ff_path_table_t *parsed = nullptr;
    char detail[512] = "";
    const ff_status_t status = ff_path_table_parse(text.c_str(), &parsed, detail, sizeof(detail));
    // Frees the table on every return path (C++ exceptions are off).
    const std::unique_ptr<ff_path_table_t, void (*)(ff_path_table_t *)> table(parsed, ff_path_table_free);
    if (status != FF_OK) {
        Napi::Error error = Napi::Error::New(env, detail[0] != '\0' ? detail : ff_status_name(status));
        error.Set("status", ff_status_name(status));
        error.ThrowAsJavaScriptException();
        return env.Undefined();
    }
    return PathTableToObject(env, table.get());
}

Napi::Object Init(Napi::Env env, Napi::Object exports)
{
    exports.Set("parsePathTable", Napi::Function::New(env, ParsePathTable, "parsePathTable"));
    exports.Set("planeDecide", Napi::Function::New(env, PlaneDecide, "planeDecide"));
    exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
    exports.Set("segmentBytes", Napi::Function::New(env, SegmentBytes, "segmentBytes"));
    return exports;
}

} // namespace

NODE_API_MODULE(freeflow, Init)
