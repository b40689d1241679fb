/* create-vm's pure parts: the request checks made before any connection,
 * admission against 90 % of a hypervisor, pledge files, the /proc/meminfo
 * and df readings, and the virt-install argv with its quoting for SSH. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "provision/shell_quote.h"
#include "host/vm/virt_install.h"
#include "host/vm/admission.h"
#include "host/vm/request.h"
#include "host/vm/seed.h"

static void test_counts(void **state)
{
    long v = 0;
    assert_int_equal(vm_parse_count("4", 1, 8, &v), 0);
    assert_int_equal(v, 4);
    assert_int_equal(vm_parse_count("0", 1, 8, &v), -1);
    assert_int_equal(vm_parse_count("9", 1, 8, &v), -1);
    assert_int_equal(vm_parse_count("", 1, 8, &v), -1);
    assert_int_equal(vm_parse_count("4x", 1, 8, &v), -1);
    assert_int_equal(vm_parse_count("-4", -8, 8, &v), -1);
    assert_int_equal(vm_parse_count(" 4", 1, 8, &v), -1);
    assert_int_equal(vm_parse_count("99999999999999999999999", 1, 8, &v), -1);
}

static void test_usernames(void **state)
{
    assert_true(vm_username_is_valid("ubuntu"));
    assert_true(vm_username_is_valid("_svc-1"));
    assert_true(vm_username_is_valid("abcdefghijklmnopqrstuvwxyz012345"));
    assert_false(vm_username_is_valid("abcdefghijklmnopqrstuvwxyz0123456"));
    assert_false(vm_username_is_valid(""));
    assert_false(vm_username_is_valid("root"));
    assert_false(vm_username_is_valid("1abc"));
    assert_false(vm_username_is_valid("-abc"));
    assert_false(vm_username_is_valid("Admin"));
    assert_false(vm_username_is_valid("a b"));
    assert_false(vm_username_is_valid("a;reboot"));
}

static void test_domains(void **state)
{
    assert_true(vm_domain_is_valid("convocate.internal"));
    assert_true(vm_domain_is_valid("a-1.example.com"));
    assert_false(vm_domain_is_valid("internal"));
    assert_false(vm_domain_is_valid(""));
    assert_false(vm_domain_is_valid("example..com"));
    assert_false(vm_domain_is_valid(".example.com"));
    assert_false(vm_domain_is_valid("example.com."));
    assert_false(vm_domain_is_valid("-a.example.com"));
    assert_false(vm_domain_is_valid("a-.example.com"));
    assert_false(vm_domain_is_valid("Example.com"));
    assert_false(vm_domain_is_valid("ex_ample.com"));
    assert_false(vm_domain_is_valid("10.0.0.1"));
    char label[70];
    memset(label, 'a', 64);
    strcpy(label + 64, ".com");
    assert_false(vm_domain_is_valid(label));
    label[1] = '.';
    assert_true(vm_domain_is_valid(label));
}

static void test_admit_fits_exactly_ninety_percent(void **state)
{
    vm_resources total = {10, 10000, 100}, pledged = {5, 5000, 50}, req = {4, 4000, 40};
    char why[512];
    assert_int_equal(vm_admit(&total, &pledged, &req, why, sizeof why), 0);
    assert_string_equal(why, "");
    req.cpu = 5;
    assert_int_equal(vm_admit(&total, &pledged, &req, why, sizeof why), -1);
    assert_string_equal(why, "admission denied: cpu 5 pledged + 5 requested > 90% of 10 (9)");
}

static void test_admit_ram_refusal_is_quantitative(void **state)
{
    vm_resources total = {16, 32768, 1000}, pledged = {4, 30720, 100}, req = {2, 4096, 30};
    char why[512];
    assert_int_equal(vm_admit(&total, &pledged, &req, why, sizeof why), -1);
    assert_string_equal(why, "admission denied: ram 30720 MB pledged + 4096 requested > 90% of "
                             "32768 MB (29491 MB)");
}

static void test_admit_names_every_short_resource(void **state)
{
    vm_resources total = {2, 1024, 10}, pledged = {0, 0, 0}, req = {2, 1024, 10};
    char why[512];
    assert_int_equal(vm_admit(&total, &pledged, &req, why, sizeof why), -1);
    assert_non_null(strstr(why, "cpu 0 pledged + 2 requested > 90% of 2 (1)"));
    assert_non_null(strstr(why, "; ram 0 MB pledged + 1024 requested > 90% of 1024 MB (921 MB)"));
    assert_non_null(strstr(why, "; disk 0 GB pledged + 10 requested > 90% of 10 GB (9 GB)"));
}

static void test_pledge_round_trip(void **state)
{
    vm_resources in = {2, 4096, 45}, out = {0, 0, 0};
    char text[128];
    vm_pledge_format(&in, text, sizeof text);
    assert_string_equal(text, "cpu=2\nram_mb=4096\ndisk_gb=45\n");
    assert_int_equal(vm_pledge_parse(text, &out), 0);
    assert_memory_equal(&in, &out, sizeof in);
    assert_int_equal(vm_pledge_parse("cpu=2\nram_mb=4096\n", &out), -1);
    assert_int_equal(vm_pledge_parse("cpu=2\nram_mb=4096\ndisk_gb=x\n", &out), -1);
    assert_int_equal(vm_pledge_parse("cpu=2\ncpu=3\nram_mb=1\ndisk_gb=1\n", &out), -1);
    assert_int_equal(vm_pledge_parse("cpu=2\nram_mb=1\ndisk_gb=1\nswap=1\n", &out), -1);
    assert_int_equal(vm_pledge_parse("cpu=-2\nram_mb=1\ndisk_gb=1\n", &out), -1);
}

static void test_meminfo_and_df(void **state)
{
    assert_int_equal(vm_meminfo_total_mb("MemTotal:       32768000 kB\nMemFree: 1 kB\n"), 32000);
    assert_int_equal(vm_meminfo_total_mb("MemFree: 1 kB\n"), -1);
    assert_int_equal(vm_meminfo_total_mb("XMemTotal: 5 kB\n"), -1);
    assert_int_equal(vm_df_total_gb("Filesystem 1024-blocks Used Available Capacity Mounted on\n"
                                    "/dev/vda1 104857600 1 2 1% /\n"),
                     100);
    assert_int_equal(vm_df_total_gb("Filesystem 1024-blocks\n"), -1);
    assert_int_equal(vm_df_total_gb("garbage"), -1);
}

static virt_install_spec spec(void)
{
    return (virt_install_spec){.name = "convocate-abcdefgh",
                               .os_variant = "ubuntu22.04",
                               .iso = "/var/lib/libvirt/images/convocate-ubuntu-0123.iso",
                               .seed = "/var/lib/libvirt/images/convocate-abcdefgh-seed.iso",
                               .os_disk = "/var/lib/libvirt/images/convocate-abcdefgh-os.qcow2",
                               .data_disk = "/var/lib/libvirt/images/convocate-abcdefgh-data.qcow2",
                               .network = "default",
                               .cpu = 2,
                               .ram_mb = 4096,
                               .osdisk_gb = 20,
                               .datadisk_gb = 50};
}

static void test_virt_install_argv(void **state)
{
    virt_install_spec s = spec();
    virt_install_cmd c;
    char err[256];
    assert_int_equal(virt_install_build(&s, &c, err, sizeof err), 0);
    char *got = shell_quote_argv(c.argv);
    assert_non_null(got);
    assert_string_equal(
        got, "virt-install --name convocate-abcdefgh --vcpus 2 --memory 4096 --os-variant "
             "ubuntu22.04 --disk "
             "'path=/var/lib/libvirt/images/convocate-abcdefgh-os.qcow2,size=20,format=qcow2,bus="
             "virtio,serial=convocate-os' --disk "
             "'path=/var/lib/libvirt/images/convocate-abcdefgh-data.qcow2,size=50,format=qcow2,"
             "bus=virtio,serial=convocate-data' --disk "
             "'path=/var/lib/libvirt/images/convocate-abcdefgh-seed.iso,device=cdrom,readonly=on' "
             "--location "
             "'/var/lib/libvirt/images/"
             "convocate-ubuntu-0123.iso,kernel=casper/vmlinuz,initrd=casper/initrd' "
             "--extra-args 'autoinstall console=ttyS0,115200n8' --network "
             "'network=default,model=virtio' --graphics none --noautoconsole");
    free(got);
    assert_null(c.argv[c.n]);
}

static void test_virt_install_refuses_comma_paths(void **state)
{
    virt_install_spec s = spec();
    virt_install_cmd c;
    char err[256];
    s.seed = "/tmp/a,b.iso";
    assert_int_equal(virt_install_build(&s, &c, err, sizeof err), -1);
    assert_string_equal(err, "virt-install: the seed path /tmp/a,b.iso holds a ','");
}

static void test_virt_install_refuses_long_words(void **state)
{
    virt_install_spec s = spec();
    virt_install_cmd c;
    char err[256], name[VIRT_INSTALL_ARG_MAX + 8];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    s.name = name;
    assert_int_equal(virt_install_build(&s, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "longer than"));
}

static void test_pubkeys(void **state)
{
    assert_true(vm_pubkey_is_valid("ssh-ed25519 AAAAC3Nza op@host"));
    assert_true(vm_pubkey_is_valid("ecdsa-sha2-nistp256 AAAA"));
    assert_true(vm_pubkey_is_valid("sk-ssh-ed25519@openssh.com AAAA"));
    assert_false(vm_pubkey_is_valid(""));
    assert_false(vm_pubkey_is_valid("AAAAC3Nza"));
    assert_false(vm_pubkey_is_valid("ssh-ed25519 AAAA\nssh-rsa BBBB"));
    assert_false(vm_pubkey_is_valid("ssh-ed25519 AAAA\tx"));
    char big[VM_PUBKEY_MAX + 2];
    memset(big, 'A', sizeof big - 1);
    memcpy(big, "ssh-", 4);
    big[sizeof big - 1] = '\0';
    assert_false(vm_pubkey_is_valid(big));
}

static void test_seed_texts(void **state)
{
    vm_seed_spec s = {.hostname = "abcdefgh",
                      .domain = "lab.example.test",
                      .username = "ops",
                      .pubkey = "ssh-ed25519 AAAA op \"quoted\" \\ #not-a-comment"};
    char *ud = vm_seed_user_data(&s), *md = vm_seed_meta_data(&s);
    assert_non_null(ud);
    assert_non_null(md);
    assert_string_equal(md, "instance-id: convocate-abcdefgh\nlocal-hostname: abcdefgh\n");
    assert_true(strncmp(ud, "#cloud-config\nautoinstall:\n  version: 1\n", 40) == 0);
    assert_non_null(strstr(ud, "        serial: convocate-os\n"));
    assert_non_null(strstr(ud, "    hostname: abcdefgh\n    fqdn: abcdefgh.lab.example.test\n"));
    assert_non_null(strstr(ud, "      - name: ops\n"));
    assert_non_null(strstr(ud, "        sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n"));
    /* The key is one YAML double-quoted scalar: its quotes and backslash
     * escaped, its '#' inside the quotes. */
    assert_non_null(
        strstr(ud, "          - \"ssh-ed25519 AAAA op \\\"quoted\\\" \\\\ #not-a-comment\"\n"));
    char a[65], b[65];
    assert_int_equal(vm_seed_digest(&s, a), 0);
    assert_int_equal(vm_seed_digest(&s, b), 0);
    assert_string_equal(a, b);
    s.username = "ops2";
    assert_int_equal(vm_seed_digest(&s, b), 0);
    assert_string_not_equal(a, b);
    free(ud);
    free(md);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_usernames),
        cmocka_unit_test(test_domains),
        cmocka_unit_test(test_admit_fits_exactly_ninety_percent),
        cmocka_unit_test(test_admit_ram_refusal_is_quantitative),
        cmocka_unit_test(test_admit_names_every_short_resource),
        cmocka_unit_test(test_pledge_round_trip),
        cmocka_unit_test(test_meminfo_and_df),
        cmocka_unit_test(test_virt_install_argv),
        cmocka_unit_test(test_virt_install_refuses_comma_paths),
        cmocka_unit_test(test_virt_install_refuses_long_words),
        cmocka_unit_test(test_pubkeys),
        cmocka_unit_test(test_seed_texts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
