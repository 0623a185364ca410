/* cmd_variants.c - `aprfs variants`: the variant table (plan/variant.h) as text, which
 * tests, scripts and the man page build read instead of naming variants themselves:
 * one line per variant, --names (one name a line) or --scd (the man page's table rows). */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "format/dtype.h"
#include "plan/variant.h"

static void put_dtypes(const aprfs_variant *v)
{
	fputs(aprfs_apr_dtype_name(v->codec->dtype), stdout);
	if (v->fallback)
		printf(",%s", aprfs_apr_dtype_name(v->fallback->dtype));
}

int aprfs_cmd_variants(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	if (argc > 2 || (argc == 2 && strcmp(mode, "--names") && strcmp(mode, "--scd"))) {
		fprintf(stderr, "usage: aprfs variants [--names | --scd]\n");
		return 2;
	}
	for (int i = 0; i < APRFS_VARIANT_COUNT; i++) {
		const aprfs_variant *v = &aprfs_variants[i];

		if (!strcmp(mode, "--names")) {
			printf("%s\n", v->name);
		} else if (!strcmp(mode, "--scd")) {
			printf("|  %s\n:  %s\n", v->name, v->help);
		} else {
			printf("%s\t", v->name);
			put_dtypes(v);
			printf("\t%u\t%s\n", v->bits, v->help);
		}
	}
	return fflush(stdout) == 0 ? 0 : 1;
}
