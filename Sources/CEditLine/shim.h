#ifndef CEDITLINE_SHIM_H
#define CEDITLINE_SHIM_H
#include <stdio.h>
#include <stdlib.h>
#include <editline/readline.h>
/* Setting libedit's global from Swift 6 counts as shared mutable state: do it here, once. */
static inline void cedit_set_completion(rl_compentry_func_t *generator) {
    rl_completion_entry_function = generator;
    rl_completion_append_character = ' ';
}
#endif
