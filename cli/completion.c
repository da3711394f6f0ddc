/*
 * farutech completion bash: a bash completion script written from the command tables, so it
 * always offers what this binary accepts.
 */
#include "cli.h"

#include <stdio.h>

static void print_opts(const fc_opt_t *opts)
{
    for (const fc_opt_t *o = opts; o != NULL && o->name != NULL; o++)
        printf(" --%s", o->name);
}

static int bash(fc_ctx_t *ctx, const fc_args_t *a)
{
    puts("# bash completion for farutech (farutech completion bash)\n"
         "_farutech()\n{\n"
         "    local cur=${COMP_WORDS[COMP_CWORD]} group=${COMP_WORDS[1]} sub=${COMP_WORDS[2]} words=\"\"\n"
         "    local global=\"--server --json --all --limit --cursor --help\"");
    fputs("    if [[ $COMP_CWORD -eq 1 ]]; then\n        words=\"", stdout);
    for (size_t i = 0; i < fc_ngroups; i++)
        printf("%s%s", i ? " " : "", fc_groups[i]->name);
    puts(" --help\"\n    else\n        case \"$group\" in");
    for (size_t i = 0; i < fc_ngroups; i++) {
        const fc_group_t *g = fc_groups[i];
        printf("        %s)\n", g->name);
        if (g->ncommands == 1 && g->commands[0].name == NULL) {
            fputs("            words=\"", stdout);
            print_opts(g->commands[0].opts);
            puts(" $global\" ;;");
            continue;
        }
        fputs("            if [[ $COMP_CWORD -eq 2 ]]; then\n                words=\"", stdout);
        for (size_t j = 0; j < g->ncommands; j++)
            printf("%s ", g->commands[j].name);
        puts("--help\"\n            else\n                case \"$sub\" in");
        for (size_t j = 0; j < g->ncommands; j++) {
            printf("                %s) words=\"", g->commands[j].name);
            print_opts(g->commands[j].opts);
            puts(" $global\" ;;");
        }
        puts("                esac\n            fi ;;");
    }
    puts("        esac\n    fi\n"
         "    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\n"
         "complete -o default -F _farutech farutech");
    return FC_EXIT_OK;
}

static const fc_command_t commands[] = {
    {"bash", NULL, "Print the bash completion script (source it, or install it in bash-completion's directory)", NULL, 0, 0, bash},
};
const fc_group_t fc_group_completion = {"completion", "Shell completion: bash", commands, 1};
