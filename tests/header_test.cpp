/* The public header alone, compiled as strict C11 and as C++ (the same file
 * is built by both compilers). */
#include <chatstore.h>

static int use(void) {
    cs_options o = CS_OPTIONS_INIT;
    cs_limits l = CS_LIMITS_DEFAULT;
    (void)l;
    return (int)o.version + CHATSTORE_VERSION_NUMBER + (int)CS_E__COUNT;
}

int main(void) { return use() > 0 ? 0 : 1; }
