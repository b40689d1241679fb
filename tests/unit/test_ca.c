/* Unit tests for src/host/ca.c and rsyslog_conf.c: the cluster CA signs
 * leaves that chain to it and to no other CA, keys are told apart, the
 * certificates carry what SPEC 11/13 ask, and the drop-ins refuse values
 * that could break out of their quoted strings. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "host/pki/ca.h"
#include "host/pki/rsyslog_conf.h"

#define AGENT_ID "ab12cd34"

typedef struct {
    ca_pair ca, other_ca, server, client, foreign_client;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char err[512];
    ca_leaf_request server = {.kind = CA_LEAF_SERVER, .cn = "shell.test", .san_dns = "shell.test"};
    ca_leaf_request client = {.kind = CA_LEAF_CLIENT, .cn = AGENT_ID};
    if (f == NULL || ca_mint("test CA", &f->ca, err, sizeof err) < 0 ||
        ca_mint("other CA", &f->other_ca, err, sizeof err) < 0 ||
        ca_issue(&f->ca, &server, &f->server, err, sizeof err) < 0 ||
        ca_issue(&f->ca, &client, &f->client, err, sizeof err) < 0 ||
        ca_issue(&f->other_ca, &client, &f->foreign_client, err, sizeof err) < 0) {
        print_error("setup: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ca_pair_clear(&f->ca);
    ca_pair_clear(&f->other_ca);
    ca_pair_clear(&f->server);
    ca_pair_clear(&f->client);
    ca_pair_clear(&f->foreign_client);
    free(f);
    return 0;
}

static X509 *parse(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    assert_non_null(x);
    return x;
}

static void test_ca_cert_is_a_p256_ca(void **state)
{
    fixture *f = *state;
    char err[512];
    assert_int_equal(ca_check_ca_cert(f->ca.cert, err, sizeof err), 0);
    assert_int_equal(ca_key_matches(f->ca.cert, f->ca.key, err, sizeof err), 0);
    X509 *x = parse(f->ca.cert);
    int critical = 0;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &critical, NULL);
    assert_non_null(bc);
    assert_true(bc->ca);
    assert_int_equal(critical, 1);
    BASIC_CONSTRAINTS_free(bc);
    assert_true(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    /* ten years, give or take the backdating */
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)),
                     1);
    assert_in_range(days, CA_VALIDITY_DAYS, CA_VALIDITY_DAYS + 1);
    char group[64];
    size_t len;
    assert_int_equal(
        EVP_PKEY_get_utf8_string_param(X509_get0_pubkey(x), "group", group, sizeof group, &len), 1);
    assert_string_equal(group, "prime256v1");
    X509_free(x);
}

static void test_leaves_chain_to_their_ca(void **state)
{
    fixture *f = *state;
    char err[512];
    assert_int_equal(ca_verify_chain(f->ca.cert, f->server.cert, CA_LEAF_SERVER, err, sizeof err),
                     0);
    assert_int_equal(ca_verify_chain(f->ca.cert, f->client.cert, CA_LEAF_CLIENT, err, sizeof err),
                     0);
    assert_int_equal(
        ca_leaf_is_current(f->ca.cert, &f->client, CA_LEAF_CLIENT, AGENT_ID, err, sizeof err), 0);
}

static void test_foreign_leaf_does_not_chain(void **state)
{
    fixture *f = *state;
    char err[512] = "";
    assert_int_equal(
        ca_verify_chain(f->ca.cert, f->foreign_client.cert, CA_LEAF_CLIENT, err, sizeof err), -1);
    assert_non_null(strstr(err, "does not verify"));
    assert_int_equal(ca_leaf_is_current(f->ca.cert, &f->foreign_client, CA_LEAF_CLIENT, AGENT_ID,
                                        err, sizeof err),
                     -1);
    /* and the other way round */
    assert_int_equal(
        ca_verify_chain(f->other_ca.cert, f->client.cert, CA_LEAF_CLIENT, err, sizeof err), -1);
}

static void test_purpose_is_enforced(void **state)
{
    fixture *f = *state;
    char err[512];
    /* a client certificate cannot serve, a server certificate cannot be a client */
    assert_int_equal(ca_verify_chain(f->ca.cert, f->client.cert, CA_LEAF_SERVER, err, sizeof err),
                     -1);
    assert_int_equal(ca_verify_chain(f->ca.cert, f->server.cert, CA_LEAF_CLIENT, err, sizeof err),
                     -1);
    /* a leaf is not a CA */
    assert_int_equal(ca_check_ca_cert(f->client.cert, err, sizeof err), -1);
}

static void test_key_matching(void **state)
{
    fixture *f = *state;
    char err[512];
    assert_int_equal(ca_key_matches(f->client.cert, f->client.key, err, sizeof err), 0);
    assert_int_equal(ca_key_matches(f->server.cert, f->server.key, err, sizeof err), 0);
    assert_int_equal(ca_key_matches(f->client.cert, f->server.key, err, sizeof err), -1);
    assert_int_equal(ca_key_matches(f->ca.cert, f->client.key, err, sizeof err), -1);
    ca_pair swapped = {.cert = f->client.cert, .key = f->foreign_client.key};
    assert_int_equal(
        ca_leaf_is_current(f->ca.cert, &swapped, CA_LEAF_CLIENT, AGENT_ID, err, sizeof err), -1);
    assert_int_equal(ca_key_matches(f->client.cert, "garbage", err, sizeof err), -1);
}

static void test_leaf_fields(void **state)
{
    fixture *f = *state;
    char cn[64], err[512];
    assert_int_equal(ca_cert_cn(f->client.cert, cn, sizeof cn, err, sizeof err), 0);
    assert_string_equal(cn, AGENT_ID);
    assert_int_equal(ca_cert_cn(f->server.cert, cn, sizeof cn, err, sizeof err), 0);
    assert_string_equal(cn, "shell.test");
    /* a CN that is not the one asked for is not current */
    assert_int_equal(
        ca_leaf_is_current(f->ca.cert, &f->client, CA_LEAF_CLIENT, "zz99zz99", err, sizeof err),
        -1);
    X509 *x = parse(f->server.cert);
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    assert_true(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
    assert_int_equal(X509_check_host(x, "shell.test", 0, 0, NULL), 1);
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    assert_int_equal(serial->length, 16); /* 128 random bits */
    X509 *y = parse(f->client.cert);
    assert_true(X509_get_extended_key_usage(y) & XKU_SSL_CLIENT);
    assert_int_not_equal(ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(y)), 0);
    X509_free(y);
    X509_free(x);
}

static void test_ip_san_and_bad_requests(void **state)
{
    fixture *f = *state;
    char err[512];
    ca_pair leaf;
    ca_leaf_request ip = {.kind = CA_LEAF_SERVER, .cn = "10.77.0.1", .san_ip = "10.77.0.1"};
    assert_int_equal(ca_issue(&f->ca, &ip, &leaf, err, sizeof err), 0);
    X509 *x = parse(leaf.cert);
    assert_int_equal(X509_check_ip_asc(x, "10.77.0.1", 0), 1);
    X509_free(x);
    ca_pair_clear(&leaf);
    /* a comma would splice another entry into the extension */
    ca_leaf_request splice = {.kind = CA_LEAF_SERVER, .cn = "a", .san_dns = "a,IP:1.2.3.4"};
    assert_int_equal(ca_issue(&f->ca, &splice, &leaf, err, sizeof err), -1);
    ca_leaf_request no_name = {.kind = CA_LEAF_SERVER, .cn = "a"};
    assert_int_equal(ca_issue(&f->ca, &no_name, &leaf, err, sizeof err), -1);
    ca_leaf_request bad_ip = {.kind = CA_LEAF_SERVER, .cn = "a", .san_ip = "999.1.1.1"};
    assert_int_equal(ca_issue(&f->ca, &bad_ip, &leaf, err, sizeof err), -1);
    /* the wrong CA key refuses to sign */
    ca_pair mixed = {.cert = f->ca.cert, .key = f->other_ca.key};
    ca_leaf_request client = {.kind = CA_LEAF_CLIENT, .cn = AGENT_ID};
    assert_int_equal(ca_issue(&mixed, &client, &leaf, err, sizeof err), -1);
    assert_null(leaf.cert);
}

static void test_remint_keeps_issued_leaves_valid(void **state)
{
    fixture *f = *state;
    char *again = NULL, err[512];
    assert_int_equal(ca_remint_cert("test CA", f->ca.key, &again, err, sizeof err), 0);
    assert_string_not_equal(again, f->ca.cert);
    assert_int_equal(ca_check_ca_cert(again, err, sizeof err), 0);
    assert_int_equal(ca_verify_chain(again, f->client.cert, CA_LEAF_CLIENT, err, sizeof err), 0);
    free(again);
}

static void test_rsyslog_confs(void **state)
{
    char err[256];
    rsyslog_server_params s = {.port = 514,
                               .ca_file = "/r/ca.crt",
                               .cert_file = "/r/server.crt",
                               .key_file = "/r/server.key",
                               .log_dir = "/r/logs"};
    char *text = rsyslog_server_conf(&s, err, sizeof err);
    assert_non_null(text);
    assert_non_null(strstr(text, "streamDriver.authMode=\"x509/certvalid\""));
    assert_non_null(strstr(text, "port=\"514\""));
    assert_non_null(strstr(text, "string=\"/r/logs/%hostname%.log\""));
    free(text);
    s.key_file = "/r/x\"\nmodule(load=\"omprog\")";
    assert_null(rsyslog_server_conf(&s, err, sizeof err));
    s.key_file = "relative";
    assert_null(rsyslog_server_conf(&s, err, sizeof err));

    rsyslog_client_params c = {.agent_id = AGENT_ID,
                               .target = "10.77.0.1",
                               .port = 514,
                               .server_name = "shell.test",
                               .ca_file = "/a/ca.crt",
                               .cert_file = "/a/client.crt",
                               .key_file = "/a/client.key",
                               .spool_dir = "/a/spool"};
    text = rsyslog_client_conf(&c, err, sizeof err);
    assert_non_null(text);
    assert_non_null(strstr(text, " " AGENT_ID " %APP-NAME%"));
    assert_non_null(strstr(text, "StreamDriverPermittedPeers=\"shell.test\""));
    assert_non_null(strstr(text, "queue.saveOnShutdown=\"on\""));
    assert_non_null(strstr(text, "action.resumeRetryCount=\"-1\""));
    free(text);
    c.agent_id = "../../x";
    assert_null(rsyslog_client_conf(&c, err, sizeof err));
    c.agent_id = AGENT_ID;
    c.target = "a\" b";
    assert_null(rsyslog_client_conf(&c, err, sizeof err));
    c.target = "10.77.0.1";
    c.port = 0;
    assert_null(rsyslog_client_conf(&c, err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ca_cert_is_a_p256_ca),
        cmocka_unit_test(test_leaves_chain_to_their_ca),
        cmocka_unit_test(test_foreign_leaf_does_not_chain),
        cmocka_unit_test(test_purpose_is_enforced),
        cmocka_unit_test(test_key_matching),
        cmocka_unit_test(test_leaf_fields),
        cmocka_unit_test(test_ip_san_and_bad_requests),
        cmocka_unit_test(test_remint_keeps_issued_leaves_valid),
        cmocka_unit_test(test_rsyslog_confs),
    };
    return cmocka_run_group_tests_name("ca", tests, setup, teardown);
}
