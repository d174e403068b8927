#include "handoff.h"
