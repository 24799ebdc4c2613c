use super::*;

fn v2_header(cmd: u8, fam: u8, addrs: &[u8]) -> Vec<u8> {
    let mut h = V2_SIG.to_vec();
    h.push(0x20 | cmd);
    h.push(fam);
    h.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
    h.extend_from_slice(addrs);
    h
}

#[test]
fn v1_lines_give_the_client_address() {
    let line = b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\nGET / HTTP/1.1\r\n";
    assert_eq!(
        parse(line),
        Parsed::Header {
            len: 41,
            client: Some("192.0.2.7:56324".parse().unwrap())
        }
    );
    let six = b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n";
    assert_eq!(
        parse(six),
        Parsed::Header {
            len: six.len(),
            client: Some("[2001:db8::1]:1".parse().unwrap())
        }
    );
    assert_eq!(
        parse(b"PROXY UNKNOWN\r\n"),
        Parsed::Header {
            len: 15,
            client: None
        }
    );
    assert_eq!(parse(b"PROXY TCP4 1.2.3.4"), Parsed::NeedMore);
    assert_eq!(parse(b"PRO"), Parsed::NeedMore);
    assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Parsed::NotProxy);
    assert_eq!(parse(b"POST"), Parsed::NotProxy);
}

#[test]
fn bad_v1_lines_are_refused() {
    for bad in [
        &b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"[..],
        b"PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 70000 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
    ] {
        assert!(
            matches!(parse(bad), Parsed::Bad(_)),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let long = [b"PROXY ".to_vec(), vec![b'1'; 120]].concat();
    assert!(matches!(parse(&long), Parsed::Bad(_)));
}

#[test]
fn v2_headers_give_the_client_address() {
    let v4 = [192, 0, 2, 7, 10, 0, 0, 1, 0xdc, 0x04, 0x01, 0xbb];
    let h = v2_header(1, 0x11, &v4);
    assert_eq!(
        parse(&h),
        Parsed::Header {
            len: 28,
            client: Some("192.0.2.7:56324".parse().unwrap())
        }
    );
    assert_eq!(parse(&h[..20]), Parsed::NeedMore);
    assert_eq!(parse(&h[..5]), Parsed::NeedMore);
    let mut v6 = vec![0u8; 36];
    v6[15] = 1;
    v6[32..34].copy_from_slice(&8080u16.to_be_bytes());
    assert_eq!(
        parse(&v2_header(1, 0x21, &v6)),
        Parsed::Header {
            len: 52,
            client: Some("[::1]:8080".parse().unwrap())
        }
    );
    // LOCAL (the balancer's own health check) and TLVs past the addresses.
    let local = v2_header(0, 0, &[]);
    assert_eq!(
        parse(&local),
        Parsed::Header {
            len: 16,
            client: None
        }
    );
    let with_tlv = [&v4[..], &[0x04, 0, 1, 0]].concat();
    assert!(matches!(
        parse(&v2_header(1, 0x11, &with_tlv)),
        Parsed::Header {
            len: 32,
            client: Some(_)
        }
    ));
    assert!(matches!(
        parse(&v2_header(1, 0x11, &v4[..6])),
        Parsed::Bad(_)
    ));
    assert!(matches!(parse(&v2_header(5, 0x11, &v4)), Parsed::Bad(_)));
    let mut v3 = v2_header(1, 0x11, &v4);
    v3[12] = 0x31;
    assert!(matches!(parse(&v3), Parsed::Bad(_)));
}

#[tokio::test]
async fn a_read_header_leaves_the_request_bytes() {
    let mut wire: &[u8] = b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\r\nGET / HTTP/1.1\r\n\r\n";
    let (client, rest) = read(&mut wire).await.expect("header");
    assert_eq!(client, Some("192.0.2.7:1".parse().unwrap()));
    let mut p = Prefixed::new(rest, wire);
    let mut all = String::new();
    p.read_to_string(&mut all).await.expect("read");
    assert_eq!(all, "GET / HTTP/1.1\r\n\r\n");
    let mut plain: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
    let (client, rest) = read(&mut plain).await.expect("plain");
    assert_eq!(
        (client, rest.as_slice()),
        (None, &b"GET / HTTP/1.1\r\n\r\n"[..])
    );
}
