/*
 * catalogue: runs the bad-input catalogue (hardening/catalogue/catalogue.py) through the C API.
 *
 *   python3 hardening/catalogue/catalogue.py WORKDIR && catalogue WORKDIR/cases.json
 *
 * For every case: call the function named by the case (NULL pointers, stale handles and raw
 * request bytes included), check the status, that the error document names the field or
 * file, and for OK cases the number of results. One line per failing case, then
 * "catalogue: N cases, M failed". Everything is freed, so ASan/LSan and valgrind runs
 * show only the library's own leaks. A case with "stack_kb" is called on a thread with that
 * stack; one with "timeout" ends the run (naming the case) if it takes longer: a hang.
 */
#include "cases.h"

#include <signal.h>
#include <unistd.h>

static void on_alarm(int sig)
{
    (void)sig;
    static const char prefix[] = "FAIL (timeout, a hang) ";
    if (write(STDOUT_FILENO, prefix, sizeof prefix - 1) < 0 ||
        write(STDOUT_FILENO, current_case, strlen(current_case)) < 0 || write(STDOUT_FILENO, "\n", 1) < 0)
        _exit(1);
    _exit(1);
}


int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CASES_JSON   (from hardening/catalogue/catalogue.py WORKDIR)\n", argv[0]);
        return 2;
    }
    signal(SIGALRM, on_alarm);
    json_object *table = NULL, *cases = NULL;
    sentiment_model *valid = NULL, *stale = NULL;
    if (!open_table(argv[1], &table, &cases, &valid, &stale))
        return 2;

    size_t n = json_object_array_length(cases);
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        struct outcome o;
        failures += !run_case(json_object_array_get_idx(cases, i), valid, stale, &o);
    }
    sentiment_model_free(valid);
    json_object_put(table);
    printf("catalogue: %zu cases, %d failed\n", n, failures);
    return failures > 0;
}
