#include "objectives.hpp"

JEPA_PLUGIN("objectives", "1.0.0") {
  jepa::objectives::add_ijepa(plugin);
  jepa::objectives::add_sigreg(plugin);
  jepa::objectives::add_vicreg(plugin);
}
