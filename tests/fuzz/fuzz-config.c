/*
 * libFuzzer entry for the configuration loader: each input is written to
 * one temporary file and loaded, then freed. A password_file is read as
 * well if it is a regular file (a FIFO could block); a password_command
 * is never run (it would run the fuzzer's input as a shell command).
 *
 *   clang -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g \
 *     -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz-config.c \
 *     daemon/config.c daemon/log.c proto/alloc.c proto/buf.c proto/jid.c \
 *     $(pkg-config --cflags --libs inih libidn2) -lunistring -o fuzz-config
 *   ./fuzz-config -max_total_time=60 -max_len=8192 corpus tests/data
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"
#include "proto/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[] = "/tmp/xmppd-fuzz-config-XXXXXX";
static int fd = -1;

static void remove_file(void)
{
	unlink(path);
}

static bool write_input(const uint8_t *data, size_t size)
{
	if (fd < 0) {
		fd = mkstemp(path);
		if (fd < 0) {
			abort();
		}
		atexit(remove_file);
		log_init(LOG_ERROR, 0);
	}
	if (ftruncate(fd, 0) < 0) {
		return false;
	}
	return pwrite(fd, data, size, 0) == (ssize_t)size;
}

/* Loads the input as a configuration file; any outcome but a crash or
 * a leak is fine. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!write_input(data, size)) {
		return 0;
	}
	struct config c;
	config_init(&c);
	char *cause = NULL;
	if (config_load(&c, path, &cause) == 0) {
		struct stat st;
		bool regular = c.password_file != NULL &&
			stat(c.password_file, &st) == 0 && S_ISREG(st.st_mode);
		if (c.password != NULL || regular) {
			char *pw = config_password(&c, &cause);
			freezero_str(pw);
			free(cause);
		}
	} else {
		free(cause);
	}
	config_finish(&c);
	return 0;
}
