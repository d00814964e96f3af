/*
 * Fuzz target for everything the broker does with bytes from a pipe client: the frame reader
 * (fed in pieces whose sizes come from the input), envelope decoding, and event validation and
 * re-encoding. The same file builds as a libFuzzer target (clang -fsanitize=fuzzer) and, through
 * fuzz_main.c, as a corpus replayer that CTest runs in every build.
 */
#include <stddef.h>
#include <stdint.h>
#include "certrelay/alloc.h"
#include "certrelay/event.h"
#include "certrelay/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct crs_frame_reader r;
    size_t off = 0;
    uint8_t step;

    if (size < 1)
        return 0;
    /* The first byte chooses how the stream is cut, as reads from a socket would cut it. */
    step = (uint8_t)(data[0] ? data[0] : 1);
    data++;
    size--;
    crs_frame_reader_init(&r, 1u << 20);
    while (off < size) {
        const uint8_t *payload;
        size_t len, n = size - off < step ? size - off : step;
        int rc = crs_frame_reader_feed(&r, data + off, n);

        off += n;
        if (rc != 0)
            break;
        while ((rc = crs_frame_reader_next(&r, &payload, &len)) == 1) {
            Certrelay__V1__Envelope *env = NULL;

            if (crs_envelope_decode(payload, len, &env) == 0 &&
                env->body_case == CERTRELAY__V1__ENVELOPE__BODY_EVENT &&
                crs_event_validate(env->event) == 0) {
                uint8_t *packed = NULL;
                size_t plen = 0;
                Certrelay__V1__Event *back = NULL;

                /* What the broker stores must decode again to a valid event. */
                if (crs_event_pack(env->event, &packed, &plen) == 0 &&
                    crs_event_unpack(packed, plen, &back) != 0)
                    __builtin_trap();
                crs_event_free(back);
                crs_free(packed);
            }
            crs_envelope_free(env);
        }
        if (rc < 0)
            break;
    }
    crs_frame_reader_free(&r);
    return 0;
}
