#ifndef ENCOMPASS_COPENSSLCRYPTO_SHIM_H
#define ENCOMPASS_COPENSSLCRYPTO_SHIM_H
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#endif
