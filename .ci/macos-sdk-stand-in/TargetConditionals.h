/* A stand-in for the macOS SDK's TargetConditionals.h, used only by the macOS type-check on
 * Linux (`.ci/check-targets`): ring's C code is compiled there but never linked or run. */
#ifndef STRONGROOM_TARGET_CONDITIONALS_STAND_IN
#define STRONGROOM_TARGET_CONDITIONALS_STAND_IN
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#define TARGET_OS_TV 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_SIMULATOR 0
#endif
