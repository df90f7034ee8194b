// llama.cpp's own speed on a model, through its C API and nothing else: the baseline of
// `agentry bench local`. Linked by bench/local/run against the very static libraries the
// llama-cpp-sys-2 crate built into agentry, so both sides run the same compiled code.
//
// Usage: baseline MODEL THREADS PROMPT_TOKENS GEN_TOKENS REPS
// Prints one JSON line: {"prompt_tok_s": …, "gen_tok_s": …} (medians over REPS).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "llama.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void quiet(enum ggml_log_level level, const char *text, void *data) {
    (void)level; (void)text; (void)data;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s MODEL THREADS PROMPT_TOKENS GEN_TOKENS REPS\n", argv[0]);
        return 2;
    }
    int threads = atoi(argv[2]), n_prompt = atoi(argv[3]), n_gen = atoi(argv[4]), reps = atoi(argv[5]);
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model *model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 4096;
    cp.n_batch = 512;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "cannot make a context\n"); return 1; }
    int n_vocab = llama_vocab_n_tokens(vocab);

    // The same filler text agentry's side uses.
    const char *word = "the quick brown fox jumps over the lazy dog ";
    size_t len = strlen(word) * (n_prompt / 9 + 8) + 1;
    char *text = calloc(len, 1);
    for (int i = 0; i < n_prompt / 9 + 8; i++) strcat(text, word);
    llama_token *prompt = malloc(sizeof(llama_token) * (n_prompt * 2 + 256));
    int n = llama_tokenize(vocab, text, strlen(text), prompt, n_prompt * 2 + 256, false, false);
    if (n < n_prompt) { fprintf(stderr, "tokenized only %d tokens\n", n); return 1; }

    double *pp = calloc(reps, sizeof(double)), *tg = calloc(reps, sizeof(double));
    for (int r = 0; r < reps; r++) {
        llama_memory_clear(llama_get_memory(ctx), true);
        double t = now();
        for (int off = 0; off < n_prompt; off += 512) {
            int k = n_prompt - off < 512 ? n_prompt - off : 512;
            if (llama_decode(ctx, llama_batch_get_one(prompt + off, k))) { fprintf(stderr, "decode failed\n"); return 1; }
        }
        pp[r] = n_prompt / (now() - t);

        llama_memory_clear(llama_get_memory(ctx), true);
        if (llama_decode(ctx, llama_batch_get_one(prompt, 16))) return 1;
        t = now();
        for (int i = 0; i < n_gen; i++) {
            const float *logits = llama_get_logits_ith(ctx, -1);
            llama_token best = 0;
            for (int v = 1; v < n_vocab; v++) if (logits[v] > logits[best]) best = v;
            if (llama_decode(ctx, llama_batch_get_one(&best, 1))) return 1;
        }
        tg[r] = n_gen / (now() - t);
    }
    qsort(pp, reps, sizeof(double), cmp);
    qsort(tg, reps, sizeof(double), cmp);
    printf("{\"prompt_tok_s\": %.2f, \"gen_tok_s\": %.2f}\n", pp[reps / 2], tg[reps / 2]);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
