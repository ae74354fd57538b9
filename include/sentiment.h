/*
 * sentiment.h: the one public header of libsentiment.
 *
 * An embeddable sentiment classifier for DistilBERT/BERT-family encoders on the CPU:
 * load a Hugging Face checkpoint folder, classify, evaluate, save, fine-tune.
 *
 * Conventions (every function follows them):
 *   - Names are sentiment_<object>_<verb>. Inputs are borrowed NUL-terminated UTF-8
 *     JSON strings; the library never keeps a pointer to them after the call returns.
 *   - Every fallible function returns an int32_t status (SENTIMENT_OK on success) and,
 *     when out_json is not NULL, stores a malloc'ed NUL-terminated JSON document in
 *     *out_json on success AND on failure. On failure it is an error document:
 *       {"error": {"status": 2, "code": "invalid_argument",
 *                  "message": "train_batch_size must be > 0", "field": "train_batch_size"}}
 *     The caller owns *out_json and frees it with sentiment_string_free(). It is set to
 *     NULL only when out_json itself could not be allocated (SENTIMENT_NOMEM).
 *   - JSON keys are snake_case. An unknown key is SENTIMENT_INVALID_ARGUMENT naming it,
 *     so typos never pass silently. Consumers must ignore unknown keys in results.
 *   - Nothing is printed to stdout or stderr. No input (bad JSON, bad files, NULL
 *     pointers, invalid UTF-8, huge texts) traps or aborts the host process.
 *   - Size caps: a request_json or config_json over 16 MB (16,777,216 bytes) is
 *     SENTIMENT_INVALID_ARGUMENT naming it; "texts", "text_pairs" and "labels" take at most
 *     100,000 entries per call (more is SENTIMENT_INVALID_ARGUMENT naming the key; split the
 *     list). A data-file line (or CSV record) over 4 MB is SENTIMENT_FORMAT with file:line.
 *
 * Threading and ownership:
 *   - Every function may be called from any thread. The library has no global state a
 *     caller must initialise or lock.
 *   - A sentiment_model is immutable after sentiment_model_load(). sentiment_model_info,
 *     sentiment_tokenize, sentiment_classify, sentiment_evaluate and sentiment_model_save
 *     may run concurrently on one handle from any number of threads, with the results of
 *     serial calls (hardening/c/concurrency.c checks 8 threads).
 *   - The caller owns a handle from sentiment_model_load() and frees it once with
 *     sentiment_model_free(). A NULL, freed or foreign handle passed to any function is
 *     SENTIMENT_MISUSE, not a crash; handle values are never reused, so a freed handle never
 *     answers for a later model. A handle freed while another thread still uses it stays
 *     valid until that call returns.
 *   - The caller owns every *out_json and frees it with sentiment_string_free() (never
 *     free()); input strings stay the caller's and are not kept after the call.
 *   - fork(2): a child process may keep using the library and the handles it inherited
 *     (pyspark workers, multiprocessing, gunicorn --preload, Celery prefork). In the child,
 *     calls from the thread that forked run on a new thread the library starts per call (the
 *     OpenMP thread pool the parent built does not survive fork), and their progress
 *     callbacks come from that thread; calls from threads started in the child run on them.
 *   - Progress callbacks run on the calling thread, synchronously; event_json is valid
 *     only during the callback. Return 0 to continue, nonzero to cancel (the call then
 *     returns SENTIMENT_CANCELLED). To cancel from another thread, set a flag there and
 *     return nonzero from the callback when it is set (with "logging_steps": 1 a training
 *     run then stops within one optimizer step).
 *   - sentiment_train runs on the calling thread; several threads may train at once on
 *     separate output folders without affecting each other's results.
 *   - Compute threads: "threads" in the JSON (0 = OMP_NUM_THREADS or all cores), at most
 *     the CPUs the process may use (its affinity mask and cgroup CPU quota). The library
 *     runs its parallel loops and oneDNN on the libgomp (OpenMP) thread pool.
 *   - Saved checkpoints are written as a set: into a staging folder beside the output
 *     folder, which then replaces it in one rename (over a missing or empty folder) or one
 *     renameat2 exchange (subfolders such as checkpoint-N move across first), so a process
 *     killed during a save leaves the previous checkpoint or the new one, never one that
 *     fails to load (hardening/durability.py checks this). Only where the exchange cannot
 *     be done (another user's folder, a file system without it) do the files go in one by
 *     one, config.json last. The next save recovers the staging folder a killed save left.
 *
 * This header is the API reference. docs/ARCHITECTURE.md describes the design behind it.
 */
#ifndef SENTIMENT_H
#define SENTIMENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SENTIMENT_API __attribute__((visibility("default")))
#else
#define SENTIMENT_API
#endif

/* Bumped on any incompatible change of the functions or JSON below. Compare with
 * sentiment_abi_version() at run time to detect a header/library mismatch. */
#define SENTIMENT_ABI_VERSION 1

/* Status codes. Values are stable; new codes are only ever appended. */
enum {
    SENTIMENT_OK = 0,
    SENTIMENT_ERROR = 1,            /* unclassified failure */
    SENTIMENT_INVALID_ARGUMENT = 2, /* bad JSON, bad value, unknown key: "field" names it */
    SENTIMENT_IO = 3,               /* a file or folder cannot be read or written: "field" names it */
    SENTIMENT_FORMAT = 4,           /* a file is malformed (checkpoint, vocab, a data row): the message names it */
    SENTIMENT_CANCELLED = 5,        /* a progress callback returned nonzero */
    SENTIMENT_BUSY = 6,             /* the resource is in use (e.g. an output_dir being trained into) */
    SENTIMENT_NOMEM = 7,            /* an allocation failed */
    SENTIMENT_MISUSE = 8,           /* NULL handle or out-pointer, wrong call order */
    SENTIMENT_INTERNAL = 9          /* a bug in the library: please report it */
};

/* An opaque loaded model: encoder weights, classification head, tokenizer, labels. */
typedef struct sentiment_model sentiment_model;

/* Progress callback. event_json is one event object, e.g.
 *   {"event":"step","epoch":1,"step":10,"total_steps":1320,"loss":0.61,
 *    "learning_rate":1.9e-05,"examples_per_second":410.2}
 *   {"event":"eval", ...metrics}   {"event":"saved","path":"..."}
 * Unknown events must be ignored. Return 0 to continue, nonzero to cancel. */
typedef int32_t (*sentiment_progress_fn)(const char *event_json, void *user_data);

/* Library version string, e.g. "0.1.0". Static storage: do not free. */
SENTIMENT_API const char *sentiment_version(void);

/* SENTIMENT_ABI_VERSION of the library actually loaded. */
SENTIMENT_API int32_t sentiment_abi_version(void);

/* Static English text for a status code ("invalid argument"); never NULL. */
SENTIMENT_API const char *sentiment_status_string(int32_t status);

/* Frees a string returned through out_json. NULL is ignored. */
SENTIMENT_API void sentiment_string_free(char *s);

/* Loads a model folder (config.json, vocab.txt, model.safetensors).
 * config_json: {"model_dir": "...", "precision": "fp32", "max_length": 128, "threads": 0,
 *               "head": "auto", "seed": 42}
 * precision "int8" runs the encoder's linear layers in int8 (weights per output channel,
 * activations per token; embeddings, LayerNorm, softmax and the head stay float): a float
 * checkpoint is quantized at load, an int8 checkpoint (sentiment_model_save with
 * "precision": "int8") is loaded as is. A text's int8 result does not depend on its batch.
 * Quantizing a float checkpoint can be calibrated, which keeps int8 labels much closer to
 * fp32's: "calibration_file" (sentences: TSV, CSV or JSON Lines by extension, with a
 * "sentence" or "text" column, or any other file one sentence per line) and
 * "calibration_samples" (how many of its first sentences, default 512, 1..100000). A float
 * forward over them finds each linear layer's "outlier_channels" input channels of largest
 * range (default 16, 0..64), which are then computed in fp32, and SmoothQuant moves the rest of
 * the activations' range into the weights with "smoothquant_alpha" (0..1, default 0.4); see
 * docs/ARCHITECTURE.md. A calibration key without precision "int8", or with an int8
 * checkpoint, is INVALID_ARGUMENT; info's "quantization" says how the layers were quantized.
 * precision "bf16" runs them with bf16 operands and fp32 accumulation (weights rounded once
 * at load; LayerNorm, softmax and the head stay fp32); it needs a CPU with AVX512-BF16 or AMX,
 * else INVALID_ARGUMENT naming the CPU's "isa". A text's bf16 result does not depend on its
 * batch either. The environment variable SENTIMENT_ISA (avx2, avx512, avx512_vnni,
 * avx512_bf16, amx) caps the matrix instructions the process uses; it is read at the first
 * load and a bad value fails the load with INVALID_ARGUMENT.
 * On success *out_model is a new handle (free with sentiment_model_free) and *out_json
 * holds the same document as sentiment_model_info. On failure *out_model is NULL. */
SENTIMENT_API int32_t sentiment_model_load(const char *config_json, sentiment_model **out_model,
                                           char **out_json);

/* Effective settings: model_type, hidden_size, layers, heads, parameters, precision,
 * isa (the matrix instructions in use: "avx2", "avx512", "avx512_vnni", "avx512_bf16" or
 * "amx"), quantization (int8: {"method": "dynamic"} or {"method": "smoothquant",
 * "smoothquant_alpha", "outlier_channels", "calibration_samples", "calibration_file"}; null
 * otherwise), labels,
 * threads, max_length, head, fresh_head, load_seconds, version. */
SENTIMENT_API int32_t sentiment_model_info(const sentiment_model *model, char **out_json);

/* {"texts": ["...", ...], "text_pairs": [...], "max_length": 128} ->
 * {"input_ids": [[101, ...]], "tokens": [["[CLS]", ...]], "token_type_ids": [[0, ...]]}
 * With "text_pairs" (one second text per text), each entry is "[CLS] a [SEP] b [SEP]",
 * truncated as Hugging Face's "longest_first", with token_type_ids 0 on "[CLS] a [SEP]" and
 * 1 on "b [SEP]": BertTokenizerFast(a_list, b_list) id for id (an empty b is a pair with an
 * empty second part). token_type_ids is present only for pairs. */
SENTIMENT_API int32_t sentiment_tokenize(const sentiment_model *model, const char *request_json,
                                         char **out_json);

/* {"texts": ["...", ...], "batch_size": 32} ->
 * {"results": [{"label": "POSITIVE", "label_id": 1, "score": 0.99,
 *               "probabilities": [0.01, 0.99], "logits": [-2.1, 2.5]}]}
 * Optional keys (Hugging Face pipeline semantics):
 *   "text_pairs": [...]        one second text per text: sentence pairs (as sentiment_tokenize)
 *   "top_k": N | null          each result also lists its N best labels (null: all of them),
 *                              best first: "labels": [{"label", "label_id", "score"}, ...]
 *   "long_text": "truncate"    a text longer than max_length tokens keeps its first tokens;
 *                "window"      it is read whole, in windows of max_length tokens ([CLS] +
 *                              max_length - 2 text tokens + [SEP]) that share "stride" tokens
 *                              with their neighbours (default: a quarter of a window's text
 *                              tokens); probabilities and logits are the windows' means, and
 *                              each result says how many "windows" it used. Single texts only.
 * A batch holds at most 32,768 tokens (batch_size x max_length): a larger batch_size is
 * split, so memory stays bounded. */
SENTIMENT_API int32_t sentiment_classify(const sentiment_model *model, const char *request_json,
                                         char **out_json);

/* {"data_file": "dev.tsv"} or {"texts": [...], "labels": [...]} (labels: ids, or the model's
 * label names; optional "text_pairs"), optional "batch_size" (capped as for
 * sentiment_classify) ->
 * {"examples": 872, "accuracy": 0.9, "loss": 0.3, "macro_f1": 0.9, "mcc": 0.8,
 *  "per_label": [{"label": "NEGATIVE", "precision": 0.9, "recall": 0.88, "f1": 0.89,
 *                 "support": 428}, ...],
 *  "confusion_matrix": [[377, 51], [38, 406]], "seconds": 1.2}
 * as scikit-learn defines them: per_label over every label of the model (0 where a ratio has
 * no denominator), confusion_matrix[true][predicted], macro_f1 the mean F1 of the labels
 * present in the data or the predictions, mcc Matthews correlation (multiclass R_K).
 * A data file (data_file here, train_file and eval_file in sentiment_train) is read as:
 *   "format": "tsv" | "csv" | "jsonl"   default: the file's extension (.tsv, .csv, .jsonl;
 *                              any other extension is read as TSV).
 *                              TSV: tab-separated, no quoting. CSV: RFC 4180 (quoted fields
 *                              may hold commas, doubled quotes and line breaks). Both have a
 *                              header line naming the columns. JSON Lines: an object per line.
 *   "text_column": "sentence" (else "text"), "label_column": "label"   matched exactly, else
 *                              ignoring case
 *   "text_pair_column"         the second text of sentence pairs (none by default)
 * LF, CRLF or CR line endings, a UTF-8 BOM and blank lines are accepted. Labels are integer
 * ids or the model's label names (config.json's id2label; exact, else ignoring case), not
 * both in one file. A bad row
 * is FORMAT with file:line in the message (a wrong field count, an unclosed quote, invalid
 * UTF-8, bad JSON, an unknown label); a missing file or one that is not a regular file
 * (a FIFO, a folder) is IO.
 * cb may be NULL; it receives {"event":"progress","examples":N,"total":M} events. */
SENTIMENT_API int32_t sentiment_evaluate(const sentiment_model *model, const char *request_json,
                                         sentiment_progress_fn cb, void *user_data, char **out_json);

/* {"output_dir": "...", "precision": "fp32"} -> {"output_dir": "...", "files": [...]}
 * Writes a Hugging Face folder (config.json, model.safetensors, vocab.txt, ...) that
 * transformers.AutoModelForSequenceClassification.from_pretrained() loads. "precision":
 * "int8" writes an int8 checkpoint instead (I8 weights with F32 "<name>_scale" tensors and,
 * when calibrated, "<name>_smoothing", "<name>_outlier_columns" and "<name>_outlier_weight"
 * tensors; the scheme and "quantization_config" in the safetensors metadata; about a quarter
 * of the fp32 size) that this library loads with the same logits (transformers does not). An
 * int8 save of a float model takes the load's calibration keys. "bf16" writes every float tensor as BF16 and says "bfloat16"
 * in config.json's dtype keys (transformers loads it; not from an int8 model). "fp32" writes the weights the
 * model computes with: a model loaded at int8 writes its dequantized weights, one loaded at
 * bf16 its bf16 values. The files are staged beside output_dir and
 * put in place as one set (see "Saved checkpoints" above), so a crash leaves the old
 * checkpoint or the new one; other entries of output_dir are kept. */
SENTIMENT_API int32_t sentiment_model_save(const sentiment_model *model, const char *config_json,
                                           char **out_json);

/* Frees a model. NULL is ignored. */
SENTIMENT_API void sentiment_model_free(sentiment_model *model);

/* Fine-tunes a model folder on a labeled data file and (by default) saves the best evaluation.
 * config_json keys (Hugging Face TrainingArguments names; defaults = the GLUE SST-2 recipe):
 *   "model_dir" (required)     Hugging Face folder to start from
 *   "train_file" (required)    a data file (see sentiment_evaluate: TSV, CSV or JSON Lines)
 *   "eval_file"                a data file evaluated per eval_strategy (optional)
 *   "format", "text_column", "text_pair_column", "label_column"   how both files are read
 *                              (sentiment_evaluate)
 *   "labels"                   the label names in id order; default: the train file's. Names in
 *                              the file are sorted (Python's sorted(), as HF's run_glue);
 *                              integer labels give 0...max. The checkpoint's labels are kept
 *                              when the file's all match them (names ignoring case; integers
 *                              below their count). With another number of labels the classifier
 *                              starts fresh; the result's "notes" say so. The saved config.json
 *                              carries id2label and label2id. Any number of labels from 2 up.
 *                              Sentence pairs on a BERT checkpoint train BERT's pooler head
 *                              ("head": "auto" or "bert"; "distilbert" would be saved without
 *                              token types and is refused unless nothing is saved).
 *   "output_dir"               where checkpoints go; required unless save_strategy is "no"
 *   "learning_rate": 2e-5, "train_batch_size": 256, "eval_batch_size": 256,
 *   "num_train_epochs": 5, "seed": 42, "adam_beta1": 0.9, "adam_beta2": 0.999,
 *   "adam_epsilon": 1e-8, "weight_decay": 0.0,
 *   "lr_scheduler_type": "linear" | "constant" | "constant_with_warmup" | "cosine" | "polynomial"
 *                              (transformers' get_scheduler), "warmup_ratio": 0.0,
 *   "warmup_steps": 0          warmup steps; when > 0 it wins over warmup_ratio
 *   "lr_scheduler_kwargs": {}  cosine's "num_cycles" (0.5), polynomial's "power" (1.0) and
 *                              "lr_end" (1e-7, below learning_rate)
 *   "max_grad_norm": 1.0 (0 = no clipping), "max_length": 128,
 *   "max_steps": -1            stop after this many optimizer steps (-1 = all epochs)
 *   "metric_for_best_model": "accuracy"   what "best" means: "accuracy", "loss", "macro_f1",
 *                              "mcc" or "f1" (F1 of label 1; two labels only); "eval_" prefix
 *                              accepted. "greater_is_better": default true but for "loss"
 *   "eval_strategy": "epoch"   "epoch" (after every epoch) | "steps" (every eval_steps steps and
 *                              after the last) | "no"; "evaluation_strategy" is the old name.
 *                              Each evaluation is a row of the result's table.
 *   "eval_steps"               N steps, or a fraction of the run's steps in (0, 1); default:
 *                              logging_steps (as TrainingArguments)
 *   "save_strategy": "best"    "best" (the evaluation with the best metric_for_best_model, or
 *                              each row without eval_file) | "last" | "epoch" (every epoch into
 *                              output_dir/epoch-N, the last step into output_dir) | "steps"
 *                              (every save_steps steps into output_dir/checkpoint-N, the last
 *                              step into output_dir) | "no"
 *   "save_steps": 500          N steps, or a fraction of the run's steps in (0, 1)
 *   "save_total_limit"         keep the newest N epoch-N / checkpoint-N folders, and the best
 *                              evaluation's (default: all)
 *   "save_optimizer_state"     every checkpoint also holds the training state (AdamW moments,
 *                              the live weights, the EMA, the step and position in the epoch,
 *                              the table, the best so far): training_state.safetensors and
 *                              trainer_state.json. Default: true for "steps" and "epoch"
 *   "resume_from_checkpoint"   a checkpoint folder with a training state, or true for the newest
 *                              in output_dir: continues the run; with the same config and
 *                              data the result equals the uninterrupted run's bit for bit (a
 *                              different trajectory setting or train file is INVALID_ARGUMENT
 *                              naming it). The result's "resumed_from_step" says where.
 *   "early_stopping_patience"  stop after N evaluations in a row without an improvement of more
 *                              than "early_stopping_threshold" (0.0) over the best so far;
 *                              needs eval_file. The result's "stop_reason" and a note say so.
 *   "gradient_accumulation_steps": 1   split each batch of train_batch_size into N micro-batches
 *                              run one after another into the same gradients (the step equals
 *                              the unsplit batch's within fp32 rounding; only one micro-batch's
 *                              activations are held). With dropout, each micro-batch draws its
 *                              own masks, as in PyTorch.
 *   "max_tokens_per_micro_batch": 0    or: micro-batches of at most N tokens (R-Drop counts each
 *                              sequence twice); at least max_length; not with the above
 *   "threads": 0, "logging_steps": 1 (a step event every N steps), "head": "auto",
 *   "max_train_examples": 0 (0 = all), "dropout": true,
 *   "layerwise_lr_decay": 1.0  in (0, 1]: layer i of L (0-based) trains at decay^(L - i) times
 *                              the learning rate, the embeddings at decay^(L + 1), the head at
 *                              the full rate (1 = the same rate everywhere)
 *   "ema_decay": 0.0           in [0, 1): when > 0, keep an exponential moving average of the
 *                              weights over optimizer steps (debiased, so it starts at the first
 *                              step's weights); eval figures and checkpoints use the average
 *   "rdrop_alpha": 0.0         in [0, 100]: R-Drop (Liang et al. 2021). When > 0, each batch runs
 *                              twice under different dropout masks and the loss adds
 *                              alpha/4 (KL(p||q) + KL(q||p)) to the two copies' mean cross-
 *                              entropy; twice the compute per step; needs "dropout": true
 *   "bf16": false              mixed precision: the GEMMs of forward and backward in bf16 with
 *                              fp32 accumulation; master weights, AdamW state, LayerNorm,
 *                              softmax, loss and gradients fp32. Needs AVX512-BF16 or AMX
 * Result:
 *   {"epochs": [{"epoch": 1, "step": 264, "train_loss": 0.38, "eval_loss": 0.32,
 *                "eval_accuracy": 0.87, "eval_macro_f1": 0.87, "eval_mcc": 0.74,
 *                "eval_f1": 0.88 (two labels only), "seconds": 600.0}, ...],
 *    "best_epoch": 2, "best_step": 528, "best_metric": 0.90, "output_dir": "...",
 *    "train_examples": 67349, "train_tokens_per_second": 1500.0, "isa": "avx512_bf16",
 *    "bf16": false, "cancelled": false, "stop_reason": "finished" | "max_steps" |
 *    "early_stopping" | "cancelled" | "error", "steps": 1320, "resumed_from_step": null,
 *    "labels": ["NEGATIVE", "POSITIVE"], "notes": [],
 *    "curve": {"steps": [1, 2, ...], "loss": [0.69, 0.68, ...]}}
 *   a row's train_loss is the mean over the steps since the previous row.
 *   the eval figures and best_epoch are null without eval_file; output_dir is null
 *   without one. "curve" is the training loss per optimizer step (for runs of more than
 *   2000 steps, the mean over buckets of consecutive steps, at each bucket's last step).
 * Events, on the calling thread (cb may be NULL):
 *   {"event":"step","epoch","step","total_steps","loss","learning_rate","examples_per_second"}
 *     every logging_steps optimizer steps and at the last step; loss and examples_per_second
 *     cover the steps since the previous step event;
 *   {"event":"eval", and the keys of an "epochs" row}
 *     each row as it is made (eval_strategy);
 *   {"event":"saved","path"} after each checkpoint is written.
 * Cancellation: cb's return value is the only cancel signal, so it takes effect at the next
 *   event (with the default logging_steps 1, the next step). Once cb returns nonzero the run stops,
 *   cb is not called again, and the call returns SENTIMENT_CANCELLED with an error document
 *   whose extra key "result" holds the partial result ("cancelled": true, the epochs
 *   finished). Checkpoints already saved stay.
 * Errors name their key or file in "field": an unknown or bad key (INVALID_ARGUMENT), a
 *   missing model_dir/train_file/eval_file (IO), a malformed data row (FORMAT, the message
 *   gives file:line). A loss that turns NaN or infinite stops the run with SENTIMENT_ERROR
 *   naming "learning_rate"; checkpoints saved before stay. An error after the first step
 *   (a failed save naming "output_dir", NOMEM, a NaN loss) adds "result" to the error
 *   document: the partial result, with "stop_reason": "error".
 * Threading: runs on the calling thread with "threads" compute threads. Runs in different
 *   threads may train concurrently into different output folders; one whose output_dir
 *   is being saved into by another run in this process fails with SENTIMENT_BUSY. */
SENTIMENT_API int32_t sentiment_train(const char *config_json, sentiment_progress_fn cb, void *user_data,
                                      char **out_json);

/* The host's allreduce for sentiment_train_distributed: replace buffer[0..count) with the
 * elementwise sum of every rank's buffer, on every rank, in place (MPI_Allreduce with MPI_SUM,
 * torch.distributed.all_reduce), and return 0. Nonzero reports that the collective failed.
 *   - Called on the thread that called sentiment_train_distributed, synchronously; buffer is
 *     the library's and valid only during the call; count is at most 4,194,304 (16 MB).
 *   - Every rank makes the same calls with the same counts in the same order, so the host
 *     needs no tags; each rank must get the same sum (every common allreduce does this).
 *   - The library never links a collective library; timeouts and a dead rank are the
 *     collective's to detect (set its timeout: the library waits as long as the call does). */
typedef int32_t (*sentiment_allreduce_fn)(float *buffer, size_t count, void *user_data);

/* Data-parallel sentiment_train: this process is rank `rank` (0-based) of `world_size` processes
 * that each call this with the same config_json and data files.
 *   - train_batch_size is the global batch: each optimizer step cuts it into world_size
 *     shards as equal as they can be, rank r trains on shard r (split further by
 *     gradient_accumulation_steps or max_tokens_per_micro_batch), and the summed gradients
 *     make the step. Dropout masks follow a micro-batch's place in the whole step, so the run
 *     equals one process with gradient_accumulation_steps = world_size (times each rank's
 *     gradient_accumulation_steps, when the shards divide evenly) up to fp32 summation order.
 *   - Every rank reads train_file and the checkpoint; only rank 0 reads eval_file, evaluates,
 *     writes output_dir and reports "saved" events; every rank gets the same events otherwise
 *     and the same result. resume_from_checkpoint must be readable by every rank.
 *   - A rank whose callback cancels, or that fails (a NOMEM, a failed save), stops every rank
 *     after the same step: the others return SENTIMENT_CANCELLED with the partial result, or
 *     SENTIMENT_ERROR naming "allreduce" (the failed rank returns its own error).
 *   - allreduce is called a few times per step: the gradients in buckets with the loss, the
 *     evaluation's figures when rank 0 evaluates, and a 2-float stop vote at the end of each step.
 *   - world_size 1 is sentiment_train (allreduce is never called and may be NULL). A rank
 *     outside 0..world_size-1, world_size outside 1..65536 or a NULL allreduce with
 *     world_size > 1 is SENTIMENT_INVALID_ARGUMENT naming "rank", "world_size" or "allreduce". */
SENTIMENT_API int32_t sentiment_train_distributed(const char *config_json, int32_t rank, int32_t world_size,
                                                  sentiment_allreduce_fn allreduce, void *allreduce_data,
                                                  sentiment_progress_fn cb, void *user_data, char **out_json);

#ifdef __cplusplus
}
#endif

#endif /* SENTIMENT_H */
