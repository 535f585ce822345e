// langid_driver.cc - time CLD2 on the texts that the langid step passes it.
//
//   langid_driver TEXTS MODE
//
// TEXTS contains records of a 4-byte little-endian length and that many bytes
// of UTF-8 (bench/langid_bench.sh writes it). MODE selects the call:
//   check     ExtDetectLanguageSummaryCheckUTF8, as tasks/langid_cld2.cc
//   nocheck   ExtDetectLanguageSummary, which skips the UTF-8 check
//   validity  only CLD2::SpanInterchangeValid, the check itself
// Prints the CPU seconds of the loop and a digest of every result (language,
// percent, reliable flag), so two modes can be checked for the same results.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include <cld2/public/compact_lang_det.h>
#include <cld2/public/encodings.h>

namespace CLD2 {
// Exported by libcld2; declared in its internal compact_lang_det_impl.h.
int SpanInterchangeValid(const char *src, int byte_length);
}

static double cpu_seconds()
{
    timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        std::fprintf(stderr, "usage: langid_driver TEXTS check|nocheck|validity\n");
        return 2;
    }
    std::string mode = argv[2];
    if (mode != "check" && mode != "nocheck" && mode != "validity") {
        std::fprintf(stderr, "langid_driver: unknown mode %s\n", argv[2]);
        return 2;
    }
    FILE *f = std::fopen(argv[1], "rb");
    if (!f) {
        std::perror(argv[1]);
        return 1;
    }
    std::vector<std::string> texts;
    uint32_t len;
    while (std::fread(&len, 4, 1, f) == 1) {
        std::string s(len, '\0');
        if (len > 0 && std::fread(&s[0], 1, len, f) != len) {
            std::fprintf(stderr, "langid_driver: %s is truncated\n", argv[1]);
            return 1;
        }
        texts.push_back(s);
    }
    std::fclose(f);

    double start = cpu_seconds();
    uint64_t digest = 0;
    long bytes = 0;
    for (const std::string &s : texts) {
        CLD2::CLDHints hints = {NULL, NULL, CLD2::UNKNOWN_ENCODING, CLD2::UNKNOWN_LANGUAGE};
        CLD2::Language language3[3];
        int percent3[3] = {0, 0, 0};
        double normalized_score3[3] = {0.0, 0.0, 0.0};
        int text_bytes = 0, valid_prefix_bytes = 0;
        bool reliable = false;
        CLD2::Language lang = CLD2::UNKNOWN_LANGUAGE;
        int n = (int)s.size();
        if (mode == "check")
            lang = CLD2::ExtDetectLanguageSummaryCheckUTF8(
                s.data(), n, true, &hints, 0, language3, percent3, normalized_score3, NULL,
                &text_bytes, &reliable, &valid_prefix_bytes);
        else if (mode == "nocheck")
            lang = CLD2::ExtDetectLanguageSummary(s.data(), n, true, &hints, 0, language3,
                                                  percent3, normalized_score3, NULL, &text_bytes,
                                                  &reliable);
        else
            valid_prefix_bytes = CLD2::SpanInterchangeValid(s.data(), n);
        int percent = lang == CLD2::UNKNOWN_LANGUAGE ? 0 : percent3[0];
        digest = digest * 1000003u + (uint64_t)lang * 131u + (uint64_t)percent * 7u + reliable;
        if (mode == "validity")
            digest += (uint64_t)valid_prefix_bytes;
        bytes += n;
    }
    std::printf("%s: %zu texts, %ld bytes, %.2f CPU s, digest %016llx\n", mode.c_str(),
                texts.size(), bytes, cpu_seconds() - start, (unsigned long long)digest);
    return 0;
}
