#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/state.h"
#include "proto/alloc.h"

char *state_dir(const struct config *cfg)
{
	if (cfg->store_dir != NULL) {
		return xstrdup(cfg->store_dir);
	}
	const char *xdg = getenv("XDG_STATE_HOME");
	if (xdg != NULL && xdg[0] == '/') {
		return xasprintf("%s/xmppd", xdg);
	}
	const char *home = getenv("HOME");
	if (home == NULL || home[0] != '/') {
		return NULL;
	}
	return xasprintf("%s/.local/state/xmppd", home);
}

bool state_make_dirs(char *path)
{
	for (char *p = path + 1; *p != '\0'; p++) {
		if (*p != '/') {
			continue;
		}
		*p = '\0';
		int rc = mkdir(path, 0700);
		*p = '/';
		if (rc < 0 && errno != EEXIST) {
			return false;
		}
	}
	return mkdir(path, 0700) == 0 || errno == EEXIST;
}

static char *marker_path(const struct config *cfg, const char *bare_jid)
{
	char *dir = state_dir(cfg);
	if (dir == NULL) {
		return NULL;
	}
	char *path = xasprintf("%s/%s.scram", dir, bare_jid);
	free(dir);
	return path;
}

bool state_scram_known(const struct config *cfg, const char *bare_jid)
{
	char *path = marker_path(cfg, bare_jid);
	bool known = path != NULL && access(path, F_OK) == 0;
	free(path);
	return known;
}

void state_remember_scram(const struct config *cfg, const char *bare_jid)
{
	char *dir = state_dir(cfg);
	char *path = marker_path(cfg, bare_jid);
	if (dir == NULL || path == NULL) {
		log_warnx("no state directory: cannot remember that %s uses SCRAM",
			bare_jid);
	} else if (!state_make_dirs(dir)) {
		log_warn("cannot create %s", dir);
	} else {
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			log_warn("cannot create %s", path);
		} else {
			log_info("%s authenticated with SCRAM: PLAIN will be refused from now on",
				bare_jid);
			close(fd);
		}
	}
	free(dir);
	free(path);
}

static char *value_path(const struct config *cfg, const char *bare_jid,
	const char *name)
{
	char *dir = state_dir(cfg);
	if (dir == NULL) {
		return NULL;
	}
	char *path = xasprintf("%s/%s.%s", dir, bare_jid, name);
	free(dir);
	return path;
}

char *state_read(const struct config *cfg, const char *bare_jid,
	const char *name)
{
	char *path = value_path(cfg, bare_jid, name);
	FILE *f = path ? fopen(path, "re") : NULL;
	free(path);
	if (f == NULL) {
		return NULL;
	}
	char line[1024];
	char *value = NULL;
	if (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] != '\0') {
			value = xstrdup(line);
		}
	}
	fclose(f);
	return value;
}

void state_write(const struct config *cfg, const char *bare_jid,
	const char *name, const char *value)
{
	char *dir = state_dir(cfg);
	char *path = value_path(cfg, bare_jid, name);
	char *tmp = path ? xasprintf("%s.new", path) : NULL;
	if (dir == NULL || !state_make_dirs(dir)) {
		log_warnx("no state directory: cannot keep %s for %s", name, bare_jid);
		goto out;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (f == NULL) {
		log_warn("cannot write %s", tmp);
		if (fd >= 0) {
			close(fd);
		}
		goto out;
	}
	bool ok = fprintf(f, "%s\n", value) > 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) < 0) {
		log_warn("cannot write %s", path);
		unlink(tmp);
	}
out:
	free(tmp);
	free(path);
	free(dir);
}

void state_remove(const struct config *cfg, const char *bare_jid,
	const char *name)
{
	char *path = value_path(cfg, bare_jid, name);
	if (path != NULL && unlink(path) < 0 && errno != ENOENT) {
		log_warn("cannot remove %s", path);
	}
	free(path);
}
