"""Pattern file readers: every shared real file, cross-checks between formats, synthetic variants."""

from __future__ import annotations

import bz2
import gzip
import lzma

import numpy as np
import pytest
from pymatgen.core import Structure

from model.errors import InputError
from model.pattern import ANODES, Wavelength
from model.readers import READERS, file_filter, read_file, read_patterns

# file under data/: (format, total points, ranges, Kα1 Å or None, Kα2 Å or None)
REAL_FILES = {
    "formats/xy/D5000_1.xy": ("columns", 3651, 1, None, None),
    "formats/xy/CeO2_Pilatus1M.xy": ("columns", 1512, 1, 0.4066, None),
    "formats/xye/LaB6_d500_si_psd.xye.bz2": ("columns", 17381, 1, None, None),
    "formats/csv/single.csv": ("columns", 3050, 3, None, None),
    "formats/chi/xrd_LaB6_660c_std_brac2_20250724-194924_70c707_primary-1_mean_tth.chi":
        ("columns", 4096, 1, None, None),
    "formats/gsas/PBSO4.XRA": ("gsas", 6001, 1, 1.540593, 1.544414),
    "formats/xrdml/empyrean.xrdml": ("xrdml", 196, 1, 1.540598, None),
    "formats/xrdml/XRD-918-16_10.xrdml": ("xrdml", 5027, 1, 1.540598, None),
    "formats/xrdml/m54313_om2th_10.xrdml": ("xrdml", 1800, 1, 1.540598, 1.544426),
    "formats/raw/brk_raw1.raw": ("bruker raw", 876, 1, 1.5406, 1.54443),
    "formats/raw/brk_raw2.raw": ("bruker raw", 7251, 1, 1.5406, 1.5443),
    "formats/raw/BT86.raw": ("bruker raw", 2374, 1, 1.5406, 1.54439),
    "formats/raw/D5000_1.RAW": ("bruker raw", 3651, 1, 1.78897, 1.79285),
    "formats/raw/bruker.raw": ("bruker raw", 4059, 1, 1.5406, 1.54439),
    "formats/brml/standard.brml": ("brml", 1757, 1, 0.55941, 0.5638),
    "formats/brml/23-012-AG_2thomegascan_long.brml": ("brml", 2001, 1, 1.5406, 1.54439),
    "formats/ras/MB120718Si3.ras": ("rigaku ras", 1401, 1, 1.540593, 1.544414),
    "formats/rasx/TwoTheta_scan_powder.rasx": ("rasx", 2726, 1, 1.540593, 1.544414),
    "formats/rasx/RM20220915Si01.rasx": ("rasx", 2151, 1, 1.540593, 1.544414),
    "formats/rigaku_asc/2Theta.asc": ("rigaku asc", 7601, 1, 1.54059, 1.54441),
    "formats/uxd/BT86_.UXD": ("uxd", 2374, 1, 1.5406, 1.54439),
    "formats/uxd/Sin2Psi.uxd": ("uxd", 18 * 251, 18, 1.5406, 1.54439),
    "formats/stoe_raw/stoe.raw": ("stoe raw", 5404, 1, None, None),
    "formats/pdcif/1517474.cif": ("cif", 3296, 1, 2.0785, None),
    "experimental/av5088sup4.rtv.combined.cif": ("cif", 7665, 1, 1.54056, None),
    "experimental/br1322Isup2.rtv.combined.cif": ("cif", 9652, 1, 1.54056, None),
    "experimental/br1340Isup2.rtv.combined.cif": ("cif", 4001, 1, 1.5418, None),
    "experimental/gw5052Mg2Si_100K_LTsup2.rtv.combined.cif": ("cif", 6801, 1, 0.49935, None),
    "experimental/iz1026Isup2.rtv.combined.cif": ("cif", 5151, 1, 1.5418, None),
    "experimental/sq1033Isup2.rtv.combined.cif": ("cif", 6501, 1, 1.5418, None),
    "experimental/wm2446Isup2.rtv.combined.cif": ("cif", 5880, 1, 1.54178, None),
    "experimental/wn6225Isup2.rtv.combined.cif": ("cif", 6251, 1, 1.54056, 1.54439),
}


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_every_shared_file_loads(shared_data, name):
    fmt, points, ranges, ka1, ka2 = REAL_FILES[name]
    patterns = read_patterns(shared_data / name)
    assert [p.provenance.format for p in patterns] == [fmt] * ranges
    assert sum(len(p) for p in patterns) == points
    for pattern in patterns:
        assert pattern.provenance.path == str(shared_data / name)
        assert pattern.intensity.max() > 0
        if ka1 is None:
            assert pattern.wavelength is None
        else:
            assert pattern.wavelength.ka1 == pytest.approx(ka1, abs=1e-6)
            assert pattern.wavelength.ka2 == (None if ka2 is None else pytest.approx(ka2, abs=1e-6))


def test_shared_directories_hold_only_listed_files(shared_data):
    on_disk = {str(p.relative_to(shared_data)) for d in ("formats", "experimental")
               for p in (shared_data / d).rglob("*") if p.is_file()}
    unlisted = on_disk - set(REAL_FILES) - {"formats/MANIFEST.tsv", "experimental/manifest.csv"}
    assert not unlisted, f"files without an expectation: {sorted(unlisted)}"


def test_raw_matches_its_xy_export(shared_data):
    raw, = read_patterns(shared_data / "formats/raw/D5000_1.RAW")
    xy, = read_patterns(shared_data / "formats/xy/D5000_1.xy")
    np.testing.assert_allclose(raw.two_theta, xy.two_theta, atol=1e-6)
    np.testing.assert_allclose(raw.intensity, xy.intensity)
    assert raw.provenance.metadata["anode"] == "Co"


def test_raw_v3_matches_its_uxd_conversion(shared_data):
    raw, = read_patterns(shared_data / "formats/raw/BT86.raw")
    uxd, = read_patterns(shared_data / "formats/uxd/BT86_.UXD")
    np.testing.assert_allclose(raw.two_theta, uxd.two_theta, atol=5e-3)  # UXD keeps 4 digits of 2θ
    np.testing.assert_allclose(raw.intensity, uxd.intensity)
    assert raw.provenance.metadata["sample"] == uxd.provenance.metadata["sample"] == "BT86"


def test_header_figures(shared_data):
    gsas, = read_patterns(shared_data / "formats/gsas/PBSO4.XRA")
    assert (gsas.two_theta[0], gsas.two_theta[-1], gsas.step) == (10.0, 160.0, pytest.approx(0.025))
    v4, = read_patterns(shared_data / "formats/raw/bruker.raw")
    assert v4.two_theta[0] == pytest.approx(37.0001) and v4.step == pytest.approx(0.0204545, abs=1e-7)
    assert v4.provenance.metadata["sample"] == "Cu-12%Ag_500C1700h_P5n5rpm1_RT"
    ras, = read_patterns(shared_data / "formats/ras/MB120718Si3.ras")
    assert ras.provenance.metadata["sample"] == "MB120718Si3"
    xrdml, = read_patterns(shared_data / "formats/xrdml/empyrean.xrdml")
    assert xrdml.provenance.metadata["scan_axis"] == "2Theta"
    assert xrdml.two_theta[0] == pytest.approx(30.05) and xrdml.two_theta[-1] == pytest.approx(41.75)
    wm, = read_patterns(shared_data / "experimental/wm2446Isup2.rtv.combined.cif")
    assert (wm.two_theta[0], wm.two_theta[-1]) == (pytest.approx(9.945), pytest.approx(109.888))
    csv = read_patterns(shared_data / "formats/csv/single.csv")
    assert csv[0].two_theta[0] == pytest.approx(30.00313028)
    assert csv[-1].two_theta[-1] == pytest.approx(110.0656187)


def test_pdcif_sigma_from_esd_or_weight(shared_data):
    neutron, = read_patterns(shared_data / "formats/pdcif/1517474.cif")
    assert neutron.sigma is not None and np.all(neutron.sigma > 0)
    assert neutron.provenance.metadata["diffrn_radiation_type"] == "neutron"


def test_pdcif_esd_unknown_points_and_wavelength_loop(tmp_path):
    path = tmp_path / "p.cif"
    path.write_text("data_structure\n_cell_length_a 5.0\n"
                    "loop_\n_diffrn_radiation_wavelength\n_diffrn_radiation_wavelength_wt\n"
                    "1.540593 1.0\n1.544414 0.5\n"
                    "data_profile\n_pd_meas_2theta_range_min 10.0\n_pd_meas_2theta_range_max 10.3\n"
                    "_pd_meas_2theta_range_inc 0.1\n"
                    "loop_\n_pd_meas_counts_total\n1234(35)\n.\n12.5(12)\n2.5E+02(3)\n")
    p, = read_patterns(path)
    np.testing.assert_allclose(p.two_theta, [10.0, 10.2, 10.3])
    np.testing.assert_allclose(p.intensity, [1234, 12.5, 250])
    np.testing.assert_allclose(p.sigma, [35, 1.2, 30])
    assert p.wavelength == Wavelength(1.540593, 1.544414, 0.5)
    path.write_text("data_x\nloop_\n_pd_proc_2theta_corrected\n_pd_proc_intensity_net\n10 1\n11 abc\n")
    with pytest.raises(InputError, match="'abc' \\(point 2\\) is not a number"):
        read_patterns(path)


def test_compressed_files_open_transparently(tmp_path):
    text = "".join(f"{10 + 0.02 * i:.2f} {100 + i}\n" for i in range(50)).encode()
    plain = tmp_path / "p.xy"
    plain.write_bytes(text)
    expected, = read_patterns(plain)
    for suffix, compress in ((".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress)):
        packed = tmp_path / f"p.xy{suffix}"
        packed.write_bytes(compress(text))
        got, = read_patterns(packed)
        np.testing.assert_array_equal(got.two_theta, expected.two_theta)
        np.testing.assert_array_equal(got.intensity, expected.intensity)
        assert got.provenance.path == str(packed)


def test_wavelength_argument_fills_and_overrides(tmp_path):
    path = tmp_path / "p.xy"
    path.write_text("# Wavelength: 1.5406e-10 m\n10 1\n10.02 2\n10.04 3\n")
    assert read_patterns(path)[0].wavelength.ka1 == pytest.approx(1.5406)
    assert read_patterns(path, ANODES["MoKa"])[0].wavelength == ANODES["MoKa"]


def test_text_variants(tmp_path):
    reverse = tmp_path / "reverse.dat"
    reverse.write_text("Angle;Counts\n30;5\n20;3\n10;1\n")
    p, = read_patterns(reverse)
    assert list(p.two_theta) == [10, 20, 30] and list(p.intensity) == [1, 3, 5]
    european = tmp_path / "e.csv"
    european.write_text("2Theta;Intensity\n10,5;100,25\n10,52;101\n")
    p, = read_patterns(european)
    assert list(p.two_theta) == [10.5, 10.52] and list(p.intensity) == [100.25, 101]
    chi = tmp_path / "fit2d.chi"
    chi.write_text("CeO2 title\n2-Theta Angle (Degrees)\nIntensity\n       3\n 1.0 2.0\n 1.1 2.5\n 1.2 3\n")
    assert len(read_patterns(chi)[0]) == 3
    xye = tmp_path / "s.xye"
    xye.write_text("10 100 10\n11 121 11\n12 144 12\n")
    assert list(read_patterns(xye)[0].sigma) == [10, 11, 12]
    q = tmp_path / "q.xy"
    q.write_text("# Wavelength: 1.0e-10 m\n# q_A^-1 I\n1.0 5\n2.0 6\n")
    p, = read_patterns(q)
    np.testing.assert_allclose(p.q, [1.0, 2.0])
    q.write_text("# q_nm^-1 I\n10 5\n20 6\n")
    with pytest.raises(InputError, match="Q"):
        read_patterns(q)
    np.testing.assert_allclose(read_patterns(q, Wavelength(1.0))[0].q, [1.0, 2.0])


def test_gsas_esd_and_fxye_banks(tmp_path):
    esd = tmp_path / "e.gsa"
    body = "".join(f"{100 + i:8.1f}{10.0:8.2f}" for i in range(5))
    esd.write_text(f"title Mo Ka\nBANK 1 5 1 CONST 500.0 2.0 0 0 ESD\n{body}\n")
    p, = read_patterns(esd)
    assert list(p.two_theta) == [5.0, 5.02, 5.04, 5.06, 5.08] and list(p.sigma) == [10.0] * 5
    assert p.wavelength == ANODES["MoKa"]
    fxye = tmp_path / "f.fxye"
    fxye.write_text("title\nBANK 1 3 3 CONST 1000 1 0 0 FXYE\n1000 5 1\n1001 6 1\n1002 7 1\n"
                    "BANK 2 2 2 CONST 2000 1 0 0 FXYE\n2000 1 1\n2001 2 1\n")
    first, second = read_patterns(fxye)
    assert list(first.two_theta) == [10.0, 10.01, 10.02] and list(second.intensity) == [1, 2]
    raw = tmp_path / "gsas.raw"  # GSAS data often carry .raw, like Bruker's binary files
    raw.write_bytes(fxye.read_bytes())
    assert [p.provenance.format for p in read_patterns(raw)] == ["gsas", "gsas"]
    tof = tmp_path / "t.gsa"
    tof.write_text("title\nBANK 1 2 1 RALF 1000 10 1000 0.001 ALT\n1 2 3 4\n")
    with pytest.raises(InputError, match="time-of-flight"):
        read_patterns(tof)


def test_uxd_counts_block_and_non_two_theta_drive(tmp_path):
    uxd = tmp_path / "c.uxd"
    uxd.write_text("_FILEVERSION=1\n_WL1=0.709300\n_DRIVE='COUPLED'\n_START=5.0\n_STEPSIZE=0.5\n"
                   "_COUNTS\n 10 11 12\n 13\n")
    p, = read_patterns(uxd)
    assert list(p.two_theta) == [5.0, 5.5, 6.0, 6.5] and p.wavelength.ka1 == 0.7093
    uxd.write_text("_FILEVERSION=1\n_DRIVE='OMEGA'\n_START=5.0\n_STEPSIZE=0.5\n_COUNTS\n 10 11 12\n")
    with pytest.raises(InputError, match="OMEGA scan has no 2θ"):
        read_patterns(uxd)


def test_rigaku_ras_ranges_shift_jis_and_attenuation(tmp_path):
    def block(start, axis="2-Theta"):
        rows = "".join(f"{start + 0.1 * i:.4f} {10 + i}.0000 2.0000\r\n" for i in range(3))
        return (f'*RAS_HEADER_START\r\n*FILE_SAMPLE "試料"\r\n*MEAS_SCAN_AXIS_X "{axis}"\r\n'
                f'*HW_XG_WAVE_LENGTH_ALPHA1 "0.709319"\r\n*RAS_HEADER_END\r\n'
                f"*RAS_INT_START\r\n{rows}*RAS_INT_END\r\n")
    path = tmp_path / "two.ras"
    path.write_bytes(("*RAS_DATA_START\r\n" + block(10) + block(20) + "*RAS_DATA_END\r\n").encode("cp932"))
    first, second = read_patterns(path)
    assert first.provenance.metadata["sample"] == "試料" and first.wavelength.ka1 == 0.709319
    assert list(second.intensity) == [20.0, 22.0, 24.0]  # counts × attenuator coefficient
    path.write_bytes(("*RAS_DATA_START\r\n" + block(10, "Omega")).encode("cp932"))
    with pytest.raises(InputError, match="Omega scan has no 2θ axis"):
        read_patterns(path)


def test_rigaku_asc_groups(tmp_path):
    group = "*BEGIN\n*START = {0}\n*STOP = {1}\n*STEP = 0.5\n*COUNT = 3\n1, 2, 3\n*END\n"
    path = tmp_path / "g.asc"
    path.write_text("*TYPE = Raw\n*WAVE_LENGTH1 = 1.78897\n*SCAN_AXIS = 2theta/theta\n"
                    + group.format(5, 6) + group.format(10, 11) + "*EOF\n")
    first, second = read_patterns(path)
    assert list(first.two_theta) == [5.0, 5.5, 6.0] and list(second.two_theta) == [10.0, 10.5, 11.0]
    path.write_text("*TYPE = Raw\n*BEGIN\n*START = 5\n*STEP = 0.5\n*COUNT = 4\n1, 2, 3\n*END\n")
    with pytest.raises(InputError, match="COUNT says 4 points, file holds 3"):
        read_patterns(path)


def test_xrdml_scans_list_positions_and_attenuation(tmp_path):
    def scan(positions, data):
        return (f'<scan scanAxis="2Theta"><dataPoints><positions axis="2Theta" unit="deg">{positions}'
                f"</positions>{data}</dataPoints></scan>")
    path = tmp_path / "two.xrdml"
    path.write_text('<?xml version="1.0"?><xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/1.0">'
                    '<xrdMeasurement><usedWavelength intended="K-Alpha"><kAlpha1>1.789</kAlpha1>'
                    "<kAlpha2>1.793</kAlpha2><ratioKAlpha2KAlpha1>0.5</ratioKAlpha2KAlpha1></usedWavelength>"
                    + scan("<listPositions>10 10.5 11</listPositions>", "<intensities>1 2 3</intensities>")
                    + scan("<startPosition>20</startPosition><endPosition>21</endPosition>",
                           "<beamAttenuationFactors>1 10 1</beamAttenuationFactors><counts>4 5 6</counts>")
                    + "</xrdMeasurement></xrdMeasurements>")
    first, second = read_patterns(path)
    assert list(first.two_theta) == [10, 10.5, 11] and list(second.two_theta) == [20, 20.5, 21]
    assert list(second.intensity) == [4, 50, 6]
    assert first.wavelength == Wavelength(1.789, 1.793, 0.5, "")


def test_xrdml_omega_scan_without_two_theta_axis(tmp_path):
    path = tmp_path / "rock.xrdml"
    path.write_text('<?xml version="1.0"?><xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/2.1">'
                    '<xrdMeasurement><scan scanAxis="Omega"><dataPoints>'
                    '<positions axis="2Theta" unit="deg"><commonPosition>28.4</commonPosition></positions>'
                    '<positions axis="Omega" unit="deg"><startPosition>13</startPosition>'
                    '<endPosition>15</endPosition></positions>'
                    '<counts unit="counts">1 2 3</counts></dataPoints></scan></xrdMeasurement>'
                    '</xrdMeasurements>')
    with pytest.raises(InputError, match="not a 2θ scan"):
        read_patterns(path)


def test_structure_cif_is_read_as_its_structure(rocksalt_cif):
    structure = read_file(rocksalt_cif)
    assert isinstance(structure, Structure) and structure.composition.reduced_formula == "NaCl"
    with pytest.raises(InputError, match="crystal structure, not a powder pattern"):
        read_patterns(rocksalt_cif)


def test_structure_cif_opens_as_its_simulated_pattern(rocksalt_cif):
    from cmedgui.opening import open_file

    opened = open_file(rocksalt_cif)
    (p,) = opened.patterns
    assert p.provenance.format == "cif (simulated)" and p.provenance.metadata["simulated"]
    assert p.wavelength == ANODES["CuKa"]
    assert (p.two_theta[0], p.two_theta[-1], len(p)) == (5.0, 90.0, 4251)
    assert p.intensity.max() > 0
    assert opened.structure.lattice.abc == pytest.approx((5.64,) * 3)  # the conventional cell
    assert open_file(rocksalt_cif, ANODES["MoKa"]).patterns[0].wavelength == ANODES["MoKa"]


def test_registry_and_file_filter():
    names = [reader.name for reader in READERS]
    assert len(names) == len(set(names)) and names[-1] == "columns"
    filt = file_filter()
    assert filt.startswith("Powder patterns (")
    for ext in ("*.xy", "*.xye", "*.xrdml", "*.raw", "*.brml", "*.ras", "*.rasx", "*.uxd", "*.cif",
                "*.gsa", "*.fxye", "*.csv", "*.chi", "*.xy.gz"):
        assert ext in filt
