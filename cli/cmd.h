/* cmd.h - the `aprfs` subcommands other than mounting, as library functions so tests can
 * call them: argv[0] is the subcommand's name; the return value is the exit status
 * (0 success, 1 failure with a one-line reason on stderr, 2 usage error).
 *
 * cli/ (above lib/, beside fs/): the subcommands' argv parsing; linked into the aprfs binary.
 */
#ifndef APRFS_CMD_H
#define APRFS_CMD_H

int aprfs_cmd_convert(int argc, char **argv);
int aprfs_cmd_inspect(int argc, char **argv);

#endif
