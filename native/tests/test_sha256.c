/* SHA-256 against FIPS 180-2 (and the empty message), HMAC-SHA256 against RFC 4231, the constant-time
 * compare, and the agent-to-agent message encoding and MACs built on them. */
#include "check.h"

#include "agent_proto.h"
#include "freeflow.h"

static void hex(const uint8_t *in, size_t len, char *out)
{
    for (size_t i = 0; i < len; ++i) {
        sprintf(out + 2 * i, "%02x", in[i]);
    }
}

static void check_sha(const void *data, size_t len, const char *expected)
{
    uint8_t d[FF_SHA256_SIZE];
    char got[65];
    ff_sha256(data, len, d);
    hex(d, sizeof(d), got);
    if (strcmp(got, expected)) {
        fprintf(stderr, "sha256 of %zu bytes: got %s expected %s\n", len, got, expected);
        ++check_failures;
    }
}

static void check_hmac(const void *key, size_t key_len, const void *data, size_t len, const char *expected)
{
    uint8_t d[FF_SHA256_SIZE];
    char got[65];
    ff_hmac_sha256(key, key_len, data, len, d);
    hex(d, sizeof(d), got);
    if (strcmp(got, expected)) {
        fprintf(stderr, "hmac (key %zu, data %zu bytes): got %s expected %s\n", key_len, len, got, expected);
        ++check_failures;
    }
}

int main(void)
{
    /* FIPS 180-2 appendix B */
    check_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_sha(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    check_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* one million 'a', fed in uneven pieces so every buffering branch of update runs */
    static char million[1000000];
    memset(million, 'a', sizeof(million));
    ff_sha256_t ctx;
    ff_sha256_init(&ctx);
    size_t done = 0, step = 1;
    while (done < sizeof(million)) {
        size_t n = step < sizeof(million) - done ? step : sizeof(million) - done;
        ff_sha256_update(&ctx, million + done, n);
        done += n;
        step = step * 3 % 1000 + 1;
    }
    uint8_t d[FF_SHA256_SIZE];
    char got[65];
    ff_sha256_final(&ctx, d);
    hex(d, sizeof(d), got);
    CHECK(strcmp(got, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
    /* padding boundaries: 55, 56, 64 bytes (computed with an independent implementation, hashlib) */
    check_sha(million, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    check_sha(million, 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    check_sha(million, 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");

    /* RFC 4231 test cases 1-4, 6, 7 (5 is a truncated MAC) */
    uint8_t k1[20], k3[20], k4[25], k6[131], d3[50], d4[50];
    memset(k1, 0x0b, sizeof(k1));
    memset(k3, 0xaa, sizeof(k3));
    memset(d3, 0xdd, sizeof(d3));
    for (int i = 0; i < 25; ++i) {
        k4[i] = (uint8_t) (i + 1);
    }
    memset(d4, 0xcd, sizeof(d4));
    memset(k6, 0xaa, sizeof(k6));
    check_hmac(k1, sizeof(k1), "Hi There", 8, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    check_hmac("Jefe", 4, "what do ya want for nothing?", 28,
               "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    check_hmac(k3, sizeof(k3), d3, sizeof(d3), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
    check_hmac(k4, sizeof(k4), d4, sizeof(d4), "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
    const char *t6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    check_hmac(k6, sizeof(k6), t6, strlen(t6), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    const char *t7 = "This is a test using a larger than block-size key and a larger than block-size data. The key "
                     "needs to be hashed before being used by the HMAC algorithm.";
    check_hmac(k6, sizeof(k6), t7, strlen(t7), "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");

    /* constant-time compare */
    uint8_t a[32] = {0}, b[32] = {0};
    CHECK(ff_ct_equal(a, b, sizeof(a)));
    b[31] = 1;
    CHECK(!ff_ct_equal(a, b, sizeof(a)));
    b[31] = 0, b[0] = 0x80;
    CHECK(!ff_ct_equal(a, b, sizeof(a)));

    /* agent-to-agent messages round-trip; a wrong magic or version is refused */
    ff_peer_msg_t m = {.type = FF_PEER_HELLO,
                       .reason = 7,
                       .from_host = 1,
                       .to_host = 2,
                       .src_owner = 0x0123456789abcdefULL,
                       .dst_owner = 0xfedcba9876543210ULL};
    snprintf(m.job, sizeof(m.job), "%s", "job-42");
    for (int i = 0; i < 32; ++i) {
        m.nonce[i] = (uint8_t) i, m.mac[i] = (uint8_t) (255 - i);
    }
    uint8_t wire[FF_PEER_MSG_SIZE];
    ff_peer_msg_encode(&m, wire);
    ff_peer_msg_t back;
    CHECK(ff_peer_msg_decode(wire, &back));
    CHECK(back.type == m.type && back.reason == 7 && back.from_host == 1 && back.to_host == 2);
    CHECK(back.src_owner == m.src_owner && back.dst_owner == m.dst_owner && strcmp(back.job, "job-42") == 0);
    CHECK(memcmp(back.nonce, m.nonce, 32) == 0 && memcmp(back.mac, m.mac, 32) == 0);
    wire[5] = 2;
    CHECK(!ff_peer_msg_decode(wire, &back));
    wire[5] = FF_PEER_VERSION, wire[0] ^= 1;
    CHECK(!ff_peer_msg_decode(wire, &back));
    wire[0] ^= 1;

    /* handshake MACs: the roles differ (no reflection), another key or nonce or hello gives another MAC */
    ff_job_key_t key, other;
    ff_job_key_derive(1, &key);
    ff_job_key_derive(2, &other);
    uint8_t nonce[32] = {9}, r1[32], r2[32], i1[32];
    ff_peer_mac(&key, "responder", wire, nonce, r1);
    ff_peer_mac(&key, "initiator", wire, nonce, i1);
    CHECK(!ff_ct_equal(r1, i1, 32));
    ff_peer_mac(&other, "responder", wire, nonce, r2);
    CHECK(!ff_ct_equal(r1, r2, 32));
    nonce[0] ^= 1;
    ff_peer_mac(&key, "responder", wire, nonce, r2);
    CHECK(!ff_ct_equal(r1, r2, 32));
    nonce[0] ^= 1;
    wire[30] ^= 1; /* another destination owner */
    ff_peer_mac(&key, "responder", wire, nonce, r2);
    CHECK(!ff_ct_equal(r1, r2, 32));
    wire[30] ^= 1;
    ff_peer_mac(&key, "responder", wire, nonce, r2);
    CHECK(ff_ct_equal(r1, r2, 32));
    return check_exit_code("test_sha256");
}
