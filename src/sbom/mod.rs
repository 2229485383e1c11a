//! SPDX 2.3 documents: the kit's own SBOM.
