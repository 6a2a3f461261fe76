# Metaflow copies this module's public names into `metaflow`: it defines none.
from mf_temporal_codegen.plugin import rivals as __rivals

__rivals.warn()
