/* version: the release of flamingo-syncd, shown by --version and /api/info. */
#ifndef FLM_VERSION_H
#define FLM_VERSION_H

#define FLM_VERSION "0.1.0"

#endif
