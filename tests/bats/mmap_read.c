/* mmap_read.c - an mmap client for the bats tests: maps a file of the mount and compares
 * the bytes at the given ranges (or the whole file) with a reference file read by pread.
 * Exit 0 when all match, 1 on a mismatch (reported), 2 on a usage or I/O error. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int compare(const unsigned char *map, size_t size, int ref, unsigned long long off,
		   unsigned long long len)
{
	unsigned char *want;
	ssize_t got;

	if (off > size || len > size - off) {
		fprintf(stderr, "range %llu+%llu beyond size %zu\n", off, len, size);
		return 2;
	}
	want = malloc(len ? len : 1);
	got = want ? pread(ref, want, len, (off_t)off) : -1;
	if (got != (ssize_t)len) {
		fprintf(stderr, "reference: short read at %llu\n", off);
		free(want);
		return 2;
	}
	for (unsigned long long i = 0; i < len; i++) {
		if (map[off + i] != want[i]) {
			fprintf(stderr, "mismatch at byte %llu: %02x != %02x\n", off + i,
				map[off + i], want[i]);
			free(want);
			return 1;
		}
	}
	free(want);
	return 0;
}

int main(int argc, char **argv)
{
	struct stat st, rst;
	unsigned char *map;
	int fd, ref, rc = 0;

	if (argc < 3 || (argc - 3) % 2) {
		fprintf(stderr,
			"usage: %s FILE REFERENCE [OFFSET LENGTH]...\n"
			"  no ranges: compare the whole file (sizes must match)\n",
			argv[0]);
		return 2;
	}
	fd = open(argv[1], O_RDONLY);
	ref = open(argv[2], O_RDONLY);
	if (fd < 0 || ref < 0 || fstat(fd, &st) != 0 || fstat(ref, &rst) != 0 ||
	    st.st_size == 0) {
		perror("open");
		return 2;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	if (argc == 3) {
		if (st.st_size != rst.st_size) {
			fprintf(stderr, "size %lld != %lld\n", (long long)st.st_size,
				(long long)rst.st_size);
			return 1;
		}
		rc = compare(map, (size_t)st.st_size, ref, 0, (unsigned long long)st.st_size);
	}
	for (int i = 3; i + 1 < argc && rc == 0; i += 2)
		rc = compare(map, (size_t)st.st_size, ref, strtoull(argv[i], NULL, 0),
			     strtoull(argv[i + 1], NULL, 0));
	munmap(map, (size_t)st.st_size);
	close(fd);
	close(ref);
	return rc;
}
